package engine

import (
	"testing"
	"time"
)

// A first hello is either taken by a worker or refused by the sweeper,
// whichever comes first; never both.
func TestHelloTakenOrRefused(t *testing.T) {
	overdue := time.Now().Add(-time.Second)

	var taken client
	taken.setLive(phaseHelloQueued, overdue)
	seen := taken.live.Load() // what the sweeper read
	if !taken.takeHello() {
		t.Fatal("takeHello refused a queued hello")
	}
	if taken.refuseHello(seen) {
		t.Fatal("the sweeper refused a hello a worker had taken")
	}
	if ph, deadline := taken.liveState(); ph != phaseHelloTaken || deadline != noDeadline {
		t.Fatalf("taken hello: phase %d deadline %d", ph, deadline)
	}

	var refused client
	refused.setLive(phaseHelloQueued, overdue)
	if !refused.refuseHello(refused.live.Load()) {
		t.Fatal("the sweeper could not refuse an overdue hello")
	}
	if refused.takeHello() {
		t.Fatal("a worker took a hello the sweeper had refused")
	}

	// A hello that arrives as the sweeper gives up waiting for one: the
	// event loop's move to queued makes the sweeper's refusal fail.
	var late client
	late.setLive(phaseHello, overdue)
	seen = late.live.Load()
	late.helloQueued(time.Now(), time.Second)
	if late.refuseHello(seen) {
		t.Fatal("the sweeper refused a hello that had arrived")
	}
	if !late.takeHello() {
		t.Fatal("the arrived hello could not be taken")
	}

	// Later hellos of an answered connection are not the sweeper's.
	var idle client
	idle.setLive(phaseIdle, time.Now().Add(time.Minute))
	if !idle.takeHello() {
		t.Fatal("takeHello refused a connection past its hello")
	}
	if ph, _ := idle.liveState(); ph != phaseIdle {
		t.Fatalf("takeHello moved an idle connection to phase %d", ph)
	}
}
