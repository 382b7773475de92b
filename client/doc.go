// Package client is the PUSH CLIENT of the SimplePush design as a Go
// library: an app asks it for an endpoint and registers two callbacks, one
// for the endpoint and one for version events. The client generates and
// persists a UUID4 UAID (once) and a UUID4 channel ID per app, connects to
// pushd over WebSocket, says hello, registers every app, hands each
// endpoint to its app, and acks each version after the app's version
// callback returns. When the server answers hello with a different UAID
// (it lost this user agent's state) the client starts over with it and
// registers every app again, handing out the new endpoints. It reconnects
// with jittered exponential back-off and pings at the interval the server
// gives, never more often than once a minute.
//
// Multi is the seed's multi-UAID transport, for relays: one WebSocket that
// names many UAIDs, registers channels for any of them, and hands each
// UPDATE packet to a callback that says which UAIDs to ack.
//
// With Config.REST the client uses the REST polling form instead (PROTOCOL.md
// 4): it registers over HTTP, long polls GET /v1/updates, and acks with
// POST /v1/ack after the version callbacks.
//
// Concurrency: Register may be called before or during Run from any
// goroutine. Callbacks run on the client's goroutine, one at a time; a
// callback that blocks holds up the connection.
package client
