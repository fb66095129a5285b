// Command clocker is one Docker Engine API endpoint in front of a fleet of
// Docker hosts.
//
//	clocker serve [flags]   serve the Docker API for the fleet
//	clocker agent [flags]   the per-host agent of fleet networks (run by serve)
//	clocker host COMMAND    list, add, remove, drain and label the fleet's hosts
//	clocker app COMMAND     deploy, list, show and remove blueprint applications
//	clocker certs COMMAND   a CA and TLS certificates for serve --tlsverify
//	clocker store migrate   copy a single manager's bbolt state to etcd
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
	case "app":
		if err := appCmd(os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clocker app:", err)
			os.Exit(1)
		}
	case "certs":
		if err := certsCmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clocker certs:", err)
			os.Exit(1)
		}
	case "store":
		if err := storeCmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "clocker store:", err)
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
  app       deploy, list, show and remove applications (Brooklyn blueprints)
  certs     make a CA and certificates: certs init DIR, certs client NAME
  store     store migrate --from DIR --to etcd://HOST:PORT: one manager's state to etcd
  version   print the version

Run 'clocker serve -h' for its flags.
`)
}
