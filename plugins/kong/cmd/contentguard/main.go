// Command contentguard is the Kong plugin server of the contentguard plugin
// (package plugins/kong). Kong starts it once per node (kong.conf's
// pluginserver_contentguard_start_cmd), asks it for the plugin's schema with
// -dump (pluginserver_contentguard_query_cmd), and talks to it over the
// Unix socket <kong-prefix>/contentguard.socket.
//
//	contentguard [-kong-prefix /usr/local/kong]   serve plugin instances
//	contentguard -dump                            print the plugin's name, phases, version, priority and schema
//
// The binary must be called contentguard: go-pdk names the plugin and the
// socket after the executable. Logs go to stderr as JSON lines (Kong copies
// them into its error log); stdout carries only -dump's answer.
package main

import (
	"log"

	"github.com/Kong/go-pdk/server"

	"github.com/contentguard/contentguard/plugins/kong"
)

func main() {
	if err := server.StartServer(kong.New, kong.Version, kong.Priority); err != nil {
		log.Fatalf("contentguard plugin server: %v", err)
	}
}
