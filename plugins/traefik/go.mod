module github.com/contentguard/contentguard/plugins/traefik

go 1.26.0

require github.com/contentguard/contentguard v0.0.0

require github.com/golang-jwt/jwt/v5 v5.3.1 // indirect

// The plugin ships the engine of this repository, vendored (Traefik's
// plugin loader reads vendor/; it knows no modules). `make vendor`
// refreshes vendor/ from the main module.
replace github.com/contentguard/contentguard => ../..
