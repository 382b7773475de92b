package bench

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// BaselineHTTPReady is the line the bare HTTP baseline prints once it
// listens.
const BaselineHTTPReady = "baseline-http serving addr="

// RunBaselineHTTP runs the throughput floor: a bare fasthttp server whose
// only work is to parse version=N from a PUT body and answer 200 {}.
func RunBaselineHTTP(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			var form fasthttp.Args
			form.ParseBytes(ctx.PostBody())
			if _, err := form.GetUint("version"); err != nil || !ctx.IsPut() {
				ctx.SetStatusCode(fasthttp.StatusBadRequest)
				return
			}
			ctx.SetContentType("application/json")
			ctx.SetBodyString("{}")
		},
		Name: "baseline",
	}
	fmt.Fprintf(out, "%s%s\n", BaselineHTTPReady, ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown()
	}()
	return srv.Serve(ln)
}
