module github.com/contentguard/contentguard

go 1.26.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/traefik/yaegi v0.16.1
	go.yaml.in/yaml/v3 v3.0.6
)
