package cluster

import (
	"context"
	"testing"
)

// benchPair starts an echo server and a client Transport.
func transportBenchPair(b *testing.B) (*Transport, string) {
	srv := startTransport(b, "b", echoHandler)
	cli := startTransport(b, "a", nil)
	if _, err := cli.Call(context.Background(), srv.Addr(), 1, nil); err != nil {
		b.Fatal(err)
	}
	return cli, srv.Addr()
}

// BenchmarkTransportEcho measures throughput: many callers share the
// connections to one peer with 64-byte echo calls. ns/op is the cost of one
// call with all of them running; frames/write is the write batching.
func BenchmarkTransportEcho(b *testing.B) {
	cli, addr := transportBenchPair(b)
	req := make([]byte, 64)
	frames, writes := cli.stats.framesSent.Load(), cli.stats.writes.Load()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := cli.Call(ctx, addr, 1, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if w := cli.stats.writes.Load() - writes; w > 0 {
		b.ReportMetric(float64(cli.stats.framesSent.Load()-frames)/float64(w), "frames/write")
	}
}

// BenchmarkTransportLatency measures one caller's round trip: each 64-byte
// echo call waits for the previous one.
func BenchmarkTransportLatency(b *testing.B) {
	cli, addr := transportBenchPair(b)
	req := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := cli.Call(ctx, addr, 1, req); err != nil {
			b.Fatal(err)
		}
	}
}
