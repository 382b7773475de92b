package nodeflags

import (
	"flag"
	"io"
	"net/netip"
	"testing"
	"time"
)

func TestFlagsEnvironmentAndPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("pushd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := Bind(fs, "./data")
	env := map[string]string{
		"PUSHD_LOCK_WAIT":         "1s",
		"PUSHD_WS_ADDR":           ":9999", // the command line wins
		"PUSHD_KICK_UDP_NETWORKS": "10.0.0.0/8, 127.0.0.0/8",
	}
	err := o.Parse(fs, []string{"-ws-addr", "127.0.0.1:1234", "-max-conns", "77"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c := o.Config
	if c.WSAddr != "127.0.0.1:1234" || c.LockWait != time.Second || c.MaxConns != 77 || c.DataDir != "./data" {
		t.Fatalf("config %+v", c)
	}
	if len(c.KickUDPNetworks) != 2 || c.KickUDPNetworks[1] != netip.MustParsePrefix("127.0.0.0/8") {
		t.Fatalf("kick networks %v", c.KickUDPNetworks)
	}
	if c.Logger == nil {
		t.Fatal("no logger")
	}

	fs = flag.NewFlagSet("pushd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o = Bind(fs, "./data")
	if err := o.Parse(fs, nil, func(k string) string {
		if k == "PUSHD_ACK_TIMEOUT" {
			return "soon"
		}
		return ""
	}); err == nil {
		t.Fatal("a bad PUSHD_ACK_TIMEOUT was accepted")
	}
}
