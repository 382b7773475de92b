package engine

import (
	"testing"
	"unsafe"
)

// TestClientFitsItsSizeClass: an idle connection costs its client struct;
// 128 bytes is a Go size class, and the next one is 144.
func TestClientFitsItsSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(client{}); size > 128 {
		t.Fatalf("client is %d bytes, want <= 128", size)
	}
}
