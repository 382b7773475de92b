package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// KickTarget is how to wake a user agent that is not connected (PROTOCOL.md
// 5). It is stored with the UAID as JSON.
type KickTarget struct {
	// Type is "udp", "webhook", or the name of a proprietary driver.
	Type string `json:"type"`
	// IP and Port are the UDP wake-up address (Firefox OS's
	// wakeup_hostport).
	IP   string `json:"ip,omitempty"`
	Port int    `json:"port,omitempty"`
	// URL is the webhook to POST {"uaid": ...} to.
	URL string `json:"url,omitempty"`
	// MobileNetwork is what Firefox OS sends with wakeup_hostport (mcc,
	// mnc, netid), kept for drivers that need it.
	MobileNetwork json.RawMessage `json:"mobilenetwork,omitempty"`
}

// KickDriver wakes user agents of one target type.
//
// Kick is called from the node's kick workers, never from a PUT: it may
// block on the network, bounded by ctx. Calls for different UAIDs may run
// concurrently, so implementations must be safe for concurrent use. target
// is the driver's to keep.
type KickDriver interface {
	Kick(ctx context.Context, uaid uuid.UUID, target KickTarget) error
}

// ErrKickRefused is returned for a kick target the operator does not
// allow (UDP outside the allowed networks, webhook outside the allowed URL
// prefixes, or an unknown type).
var ErrKickRefused = errors.New("engine: kick target not allowed")

// udpKick sends one small datagram to the target, as Firefox OS expects.
type udpKick struct{}

func (udpKick) Kick(ctx context.Context, _ uuid.UUID, t KickTarget) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(t.IP, fmt.Sprint(t.Port)))
	if err != nil {
		return fmt.Errorf("engine: udp kick: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("wakeup")); err != nil {
		return fmt.Errorf("engine: udp kick: %w", err)
	}
	return nil
}

// webhookKick POSTs {"uaid": ...} to the target URL.
type webhookKick struct{ client *http.Client }

func (w webhookKick) Kick(ctx context.Context, u uuid.UUID, t KickTarget) error {
	body, _ := json.Marshal(map[string]string{"uaid": u.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("engine: webhook kick: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("engine: webhook kick: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("engine: webhook kick: %s", resp.Status)
	}
	return nil
}

// kickAllowed checks a target against the operator's allow lists.
func (n *Node) kickAllowed(t KickTarget) error {
	switch t.Type {
	case "udp":
		ip, err := netip.ParseAddr(t.IP)
		if err != nil || t.Port <= 0 || t.Port > 65535 {
			return fmt.Errorf("%w: bad udp address", ErrKickRefused)
		}
		for _, p := range n.cfg.KickUDPNetworks {
			if p.Contains(ip.Unmap()) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is outside the allowed networks", ErrKickRefused, ip)
	case "webhook":
		for _, p := range n.cfg.KickWebhookPrefixes {
			if p != "" && strings.HasPrefix(t.URL, p) {
				return nil
			}
		}
		return fmt.Errorf("%w: webhook URL not allowed", ErrKickRefused)
	}
	if _, ok := n.cfg.KickDrivers[t.Type]; ok {
		return nil
	}
	return fmt.Errorf("%w: unknown type %q", ErrKickRefused, t.Type)
}

// kickQueueLen bounds the UAIDs waiting to be kicked; beyond it kicks are
// dropped (and counted), never waited for.
const kickQueueLen = 4096

// kickWorkers is the number of goroutines carrying out kicks.
const kickWorkers = 4

// kicker wakes UAIDs that got a version while not connected, at most once
// per UAID per interval.
type kicker struct {
	queue chan uuid.UUID
	http  *http.Client // webhook kicks
	// last is when each UAID-hash slot was last kicked (unix ns); UAIDs
	// that collide share a slot, which can only make kicks rarer.
	mu   sync.Mutex
	last []int64 // guarded by mu
}

func newKicker() *kicker {
	return &kicker{
		queue: make(chan uuid.UUID, kickQueueLen),
		http:  &http.Client{Timeout: 5 * time.Second},
		last:  make([]int64, rateBuckets),
	}
}

// maybeKick queues a kick for u unless one went out within the interval. It
// never blocks.
func (n *Node) maybeKick(u uuid.UUID) {
	k := n.kicker
	slot := int(uaidHash(u) % uint64(len(k.last)))
	now := time.Now().UnixNano()
	k.mu.Lock()
	if now-k.last[slot] < n.cfg.KickInterval.Nanoseconds() {
		k.mu.Unlock()
		return
	}
	k.last[slot] = now
	k.mu.Unlock()
	select {
	case k.queue <- u:
	default:
		n.metrics.kicks.With("dropped").Inc()
	}
}

// kickWorker carries out queued kicks until the node stops.
func (n *Node) kickWorker() {
	defer n.bg.Done()
	for {
		select {
		case <-n.quit:
			return
		case u := <-n.kicker.queue:
			n.kick(u)
		}
	}
}

func (n *Node) kick(u uuid.UUID) {
	meta, err := n.store.Meta(u)
	if err != nil || meta == nil {
		return // no target: nothing to do
	}
	var t KickTarget
	if json.Unmarshal(meta, &t) != nil || n.kickAllowed(t) != nil {
		n.metrics.kicks.With("failed").Inc()
		return
	}
	driver := n.cfg.KickDrivers[t.Type]
	switch t.Type {
	case "udp":
		driver = udpKick{}
	case "webhook":
		driver = webhookKick{client: n.kicker.http}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := driver.Kick(ctx, u, t); err != nil {
		n.metrics.kicks.With("failed").Inc()
		n.log.Debug("kick failed", "uaid", u, "type", t.Type, "err", err)
		return
	}
	n.metrics.kicks.With("sent").Inc()
}

// kickTarget builds the target a client message names: a register's
// "kick" object, or hello's wakeup_hostport (with mobilenetwork). ok is
// false when the message names none.
func kickTarget(kick, wakeup, mobile json.RawMessage) (t KickTarget, ok bool, err error) {
	if string(kick) == "null" {
		kick = nil
	}
	switch {
	case kick != nil:
		if err := json.Unmarshal(kick, &t); err != nil {
			return t, false, fmt.Errorf("%w: malformed kick", ErrKickRefused)
		}
	case wakeup != nil:
		if err := json.Unmarshal(wakeup, &t); err != nil {
			return t, false, fmt.Errorf("%w: malformed wakeup_hostport", ErrKickRefused)
		}
		t.Type, t.MobileNetwork = "udp", mobile
	default:
		return t, false, nil
	}
	return t, true, nil
}

// setKick stores the UAID's kick target after checking it is allowed.
func (n *Node) setKick(u uuid.UUID, t KickTarget) error {
	if err := n.kickAllowed(t); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return n.routeSetKick(u, b)
}
