// Package wsframe is pushd's server side of RFC 6455, written for an event
// loop that owns the input buffer: it parses opening handshakes and frames
// out of byte slices that may hold any prefix of the stream, and says how
// many bytes it used, so the caller can discard exactly that much and wait
// for the rest when a handshake or frame is incomplete.
//
// Header decoding, validation, masking and the handshake itself are
// github.com/gobwas/ws; this package adds the incremental driving that
// ws.Upgrade and ws.ReadHeader cannot do on partial input (they read from an
// io.Reader and would consume a partial header). A Reader holds no buffer
// while no fragmented message is being assembled, so an idle connection
// costs only the Reader value.
//
// Concurrency: a Reader belongs to one connection and is used by one
// goroutine at a time (the connection's event loop). Functions that only
// build frames (AppendText, AppendClose, ...) are safe for concurrent use.
package wsframe
