package engine_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 2.1 and 2.3: hello and ping.

// checkUUID4 checks that s is a UUID4 in lowercase dashed form.
func checkUUID4(t *testing.T, s string) {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil {
		t.Fatalf("uaid %q: %v", s, err)
	}
	if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("uaid %q is version %d variant %v, want a UUID4", s, u.Version(), u.Variant())
	}
	if s != u.String() {
		t.Fatalf("uaid %q is not in lowercase dashed form", s)
	}
}

func TestHelloAssignsUUID4WhenUAIDEmpty(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.send(`{"messageType":"hello","uaid":"","channelIDs":[]}`)
	m := c.expect("hello", 200)
	uaid, _ := m["uaid"].(string)
	checkUUID4(t, uaid)
	if m["ping"] != float64(300) {
		t.Fatalf("hello reply %v, want ping 300", m)
	}

	// A second client gets a different UAID.
	if other := dial(t, n).hello(""); other == uaid {
		t.Fatalf("two clients were both assigned %s", uaid)
	}
}

func TestHelloAssignsUUID4WhenUAIDMissing(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.send(`{"messageType":"hello"}`)
	m := c.expect("hello", 200)
	uaid, _ := m["uaid"].(string)
	checkUUID4(t, uaid)
}

func TestHelloAssignsNewUAIDWhenInvalid(t *testing.T) {
	n := testNode(t, nil)
	valid := newUUID()
	hex := strings.ReplaceAll(valid, "-", "")
	for name, bad := range map[string]string{
		"garbage":      "not-a-uuid",
		"braces":       "{" + valid + "}",
		"urn":          "urn:uuid:" + valid,
		"short":        valid[:35],
		"non-hex":      "g" + valid[1:],
		"dashes-moved": hex[:8] + "-" + hex[8:11] + "-" + hex[11:16] + "-" + hex[16:20] + "-" + hex[20:],
	} {
		t.Run(name, func(t *testing.T) {
			got := dial(t, n).hello(bad)
			checkUUID4(t, got)
			if strings.ReplaceAll(got, "-", "") == hex {
				t.Fatalf("invalid uaid %q was accepted as %s", bad, got)
			}
		})
	}
}

func TestHelloNonStringUAIDGetsNewUAID(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.send(`{"messageType":"hello","uaid":12345,"channelIDs":[]}`)
	m := c.expect("hello", 200)
	uaid, _ := m["uaid"].(string)
	checkUUID4(t, uaid)
}

func TestHelloKeepsValidUAID(t *testing.T) {
	n := testNode(t, nil)
	mine := newUUID()
	if got := dial(t, n).hello(mine); got != mine {
		t.Fatalf("hello with %s answered %s", mine, got)
	}
}

func TestHelloNormalisesUndashedUppercaseUAID(t *testing.T) {
	n := testNode(t, nil)
	mine := newUUID()
	for name, form := range map[string]string{
		"undashed":           strings.ReplaceAll(mine, "-", ""),
		"uppercase":          strings.ToUpper(mine),
		"undashed-uppercase": strings.ToUpper(strings.ReplaceAll(mine, "-", "")),
	} {
		t.Run(name, func(t *testing.T) {
			if got := dial(t, n).hello(form); got != mine {
				t.Fatalf("hello with %s answered %s, want %s", form, got, mine)
			}
		})
	}
}

func TestHelloNormalisedUAIDIsTheSameUserAgent(t *testing.T) {
	n := testNode(t, nil)
	mine := newUUID()
	chid := newUUID()

	c1 := dial(t, n)
	c1.hello(strings.ToUpper(strings.ReplaceAll(mine, "-", "")))
	c1.register(chid)

	// The channel registered under the undashed form is known under the
	// canonical form: the UAID is kept.
	c2 := dial(t, n)
	if got := c2.hello(mine, strings.ToUpper(chid)); got != mine {
		t.Fatalf("hello with %s and its channel answered %s", mine, got)
	}
}

func TestHelloWithUnknownChannelIDsGetsNewUAID(t *testing.T) {
	n := testNode(t, nil)
	mine := newUUID()
	got := dial(t, n).hello(mine, newUUID())
	if got == mine {
		t.Fatalf("hello naming a channel the server never registered kept uaid %s", mine)
	}
	checkUUID4(t, got)
}

func TestHelloWithKnownChannelIDsKeepsUAID(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	mine := c1.hello("")
	a, b := newUUID(), newUUID()
	c1.register(a)
	c1.register(b)

	if got := dial(t, n).hello(mine, a, b); got != mine {
		t.Fatalf("hello naming registered channels answered %s, want %s", got, mine)
	}
}

func TestHelloWithOneUnknownAmongKnownChannelIDsGetsNewUAID(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	mine := c1.hello("")
	a := newUUID()
	c1.register(a)

	if got := dial(t, n).hello(mine, a, newUUID()); got == mine {
		t.Fatalf("hello naming an unregistered channel kept uaid %s", mine)
	}
}

func TestHelloWithChannelOfAnotherUAIDGetsNewUAID(t *testing.T) {
	n := testNode(t, nil)
	other := dial(t, n)
	other.hello("")
	chid := newUUID()
	other.register(chid)

	// chid is registered, but under another UAID: channels are scoped.
	mine := newUUID()
	if got := dial(t, n).hello(mine, chid); got == mine {
		t.Fatalf("hello naming another UAID's channel kept uaid %s", mine)
	}
}

func TestHelloSendsPendingVersionsRightAfterReply(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	uaid := c1.hello("")
	a, b := newUUID(), newUUID()
	epA := localEndpoint(n, c1.register(a))
	epB := localEndpoint(n, c1.register(b))
	c1.closeNow()
	waitConnected(t, n, 0)

	if st := putVersion(t, epA, 3); st != 202 {
		t.Fatalf("PUT to an offline client: %d, want 202", st)
	}
	if st := putVersion(t, epB, 9); st != 202 {
		t.Fatalf("PUT to an offline client: %d, want 202", st)
	}

	c2 := dial(t, n)
	if got := c2.hello(uaid, a, b); got != uaid {
		t.Fatalf("hello answered %s, want %s", got, uaid)
	}
	got := c2.expectNotification()
	if len(got) != 2 || got[a] != 3 || got[b] != 9 {
		t.Fatalf("pending notification %v, want %s:3 and %s:9", got, a, b)
	}
}

func TestPingIsAnsweredWithEmptyObject(t *testing.T) {
	n := testNode(t, nil)
	for name, ping := range map[string]string{
		"empty object":     `{}`,
		"messageType ping": `{"messageType":"ping"}`,
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n)
			c.hello("")
			c.send(ping)
			if m := c.recv(); len(m) != 0 {
				t.Fatalf("ping %s answered %v, want {}", ping, m)
			}
			// The connection stays usable.
			c.register(newUUID())
		})
	}
}

func TestPingsCloserThanMinPingIntervalClose4774(t *testing.T) {
	n := testNode(t, nil) // MinPingInterval: 20s
	c := dial(t, n)
	c.hello("")
	c.send(`{}`)
	if m := c.recv(); len(m) != 0 {
		t.Fatalf("ping answered %v, want {}", m)
	}
	c.send(`{}`)
	c.expectClose(4774)
}

func TestPingsFurtherApartThanMinPingIntervalAreAnswered(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.MinPingInterval = 1 }) // 1ns: every ping is far enough
	c := dial(t, n)
	c.hello("")
	for i := 0; i < 3; i++ {
		c.send(`{"messageType":"ping"}`)
		if m := c.recv(); len(m) != 0 {
			t.Fatalf("ping %d answered %v, want {}", i, m)
		}
	}
}

// TestHelloWithAHugeChannelListIsServed: a hello naming as many channels as
// fit a message is answered (with a new UAID: the server knows none of
// them), and the connection works on.
func TestHelloWithAHugeChannelListIsServed(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	uaid := newUUID()
	ids := make([]string, 0, 800)
	for len(ids) < 800 { // 800 x 39 bytes: just under the 32 KiB message limit
		ids = append(ids, newUUID())
	}
	got := c.hello(uaid, ids...)
	if got == uaid {
		t.Fatalf("hello naming 800 unknown channels kept its UAID")
	}
	c.register(newUUID())
}
