package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/clocker/clocker/frontdoor/tlsconf"
)

// certsCmd is `clocker certs init DIR` and `clocker certs client NAME`: a
// CA and certificates in Docker's layout, for `clocker serve --tlsverify`
// and DOCKER_CERT_PATH.
func certsCmd(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("want 'certs init DIR [--name HOST]… [--ip ADDR]… [--client CN]' or 'certs client NAME [--dir DIR] [--out DIR]'")
	}
	switch args[0] {
	case "init":
		return certsInit(args[1:], out)
	case "client":
		return certsClient(args[1:], out)
	default:
		return fmt.Errorf("unknown certs command %q: want init or client", args[0])
	}
}

func certsInit(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("certs init", flag.ContinueOnError)
	var names, ips listFlag
	fs.Var(&names, "name", "a DNS name the server is reached at (repeatable; default localhost and this machine's name)")
	fs.Var(&ips, "ip", "an address the server is reached at (repeatable; default 127.0.0.1 and ::1)")
	client := fs.String("client", "client", "the client certificate's CN: the identity it is served as")
	dir, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if dir == "" || fs.NArg() > 0 {
		return errors.New("certs init: want one DIR")
	}
	if len(names) == 0 {
		names = listFlag{"localhost"}
		if h, err := os.Hostname(); err == nil && h != "localhost" {
			names = append(names, h)
		}
	}
	var addrs []net.IP
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("--ip %q: not an IP address", s)
		}
		addrs = append(addrs, ip)
	}
	if len(addrs) == 0 {
		addrs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if err := tlsconf.InitDir(dir, names, addrs, *client); err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(out, `CA, server and client certificates written to %s.
Serve:   clocker serve --tlsverify --tlscacert %[1]s/ca.pem --tlscert %[1]s/server-cert.pem --tlskey %[1]s/server-key.pem --listen tcp://0.0.0.0:2376
Client:  export DOCKER_HOST=tcp://HOST:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=%[1]s
More:    clocker certs client NAME --dir %[1]s
`, abs)
	return nil
}

func certsClient(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("certs client", flag.ContinueOnError)
	dir := fs.String("dir", ".", "the directory 'certs init' wrote (holding ca.pem and ca-key.pem)")
	outDir := fs.String("out", "", "where to write ca.pem, cert.pem and key.pem (default DIR/NAME)")
	name, rest := splitPositional(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if name == "" || fs.NArg() > 0 {
		return errors.New("certs client: want one NAME")
	}
	if *outDir == "" {
		*outDir = filepath.Join(*dir, name)
	}
	if err := tlsconf.IssueClient(*dir, name, *outDir); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*outDir)
	fmt.Fprintf(out, "client certificate for %q written to %s (DOCKER_CERT_PATH=%[2]s)\n", name, abs)
	return nil
}

// splitPositional takes a leading positional argument, so that both
// `init DIR --name x` and `init --name x DIR` read.
func splitPositional(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}
