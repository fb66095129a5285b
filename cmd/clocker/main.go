// Command clocker is one Docker Engine API endpoint in front of a fleet of
// Docker hosts.
//
//	clocker serve [flags]   serve the Docker API for the fleet
//	clocker agent [flags]   the per-host agent of fleet networks (run by serve)
//	clocker host COMMAND    list, add, remove, drain and label the fleet's hosts
//	clocker version         print the version
package main

import (
	"fmt"
	"os"

	"github.com/clocker/clocker/proxy"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "clocker serve:", err)
			os.Exit(1)
		}
	case "agent":
		if err := runAgent(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "clocker agent:", err)
			os.Exit(1)
		}
	case "host":
		if err := hostCmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clocker host:", err)
			os.Exit(1)
		}
	case "version", "--version":
		fmt.Println("clocker", proxy.Version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "clocker: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: clocker COMMAND [flags]

Commands:
  serve     serve the Docker Engine API for a fleet of Docker hosts
  agent     the per-host agent of fleet networks (serve runs it on every host)
  host      list, add, remove, drain and label the fleet's hosts
  version   print the version

Run 'clocker serve -h' for its flags.
`)
}
