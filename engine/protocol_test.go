package engine_test

import (
	"testing"

	"github.com/google/uuid"
)

func TestRegisterPutDeliverAck(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	uaid := c.hello("")
	if _, err := uuid.Parse(uaid); err != nil {
		t.Fatalf("server-assigned uaid %q: %v", uaid, err)
	}
	chid := uuid.NewString()
	ep := localEndpoint(n, c.register(chid))

	if st := putVersion(t, ep, 5); st != 200 {
		t.Fatalf("PUT to connected client: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 5 {
		t.Fatalf("notification %v, want %s:5", got, chid)
	}
	c.ack(chid, 5)
	if st := putVersion(t, ep, 6); st != 200 {
		t.Fatalf("PUT after ack: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 6 {
		t.Fatalf("notification %v, want %s:6", got, chid)
	}
}
