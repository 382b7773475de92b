// Command pushclient is a small SimplePush client for trying pushd, built
// on package client: it registers the apps named by -apps, prints
// "endpoint <app> <url>" for each and "version <app> <n>" for every version
// event, and acks them. Its UAID and channel IDs are kept in -state, so a
// restarted client is the same user agent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pushd/pushd/client"
)

func main() {
	ws := flag.String("ws", "ws://localhost:8080/", "pushd WebSocket `URL`")
	apps := flag.String("apps", "demo", "comma-separated app `names` to register")
	statePath := flag.String("state", "pushclient.json", "state `file` (UAID and channel IDs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := client.New(client.Config{
		URL:       *ws,
		StatePath: *statePath,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushclient:", err)
		os.Exit(1)
	}
	for _, name := range strings.Split(*apps, ",") {
		err := c.Register(name, client.App{
			OnEndpoint: func(ep string) { fmt.Printf("endpoint %s %s\n", name, ep) },
			OnVersion:  func(v uint64) { fmt.Printf("version %s %d\n", name, v) },
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "pushclient:", err)
			os.Exit(1)
		}
	}
	if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "pushclient:", err)
		os.Exit(1)
	}
}
