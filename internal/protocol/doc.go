// Package protocol is the SimplePush client message codec: it decodes the
// JSON messages clients send (hello, register, unregister, ack, ping) into
// Message values without judging their meaning, and appends the server's
// replies and notifications to byte slices without reflection.
//
// Validation of field contents (is this a UUID, is this UAID one of the
// connection's) is the engine's job; Decode only fails on input that is not
// a JSON object, which closes the connection with 1007 (PROTOCOL.md 2.7).
//
// Everything here is a pure function: safe for concurrent use, no
// goroutines, and no retained references to its inputs.
package protocol
