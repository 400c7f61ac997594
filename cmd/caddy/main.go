// Command caddy is Caddy with the standard modules and sessionguard.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessionguard/sessionguard"
)

func main() {
	caddycmd.Main()
}
