package cluster

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/pushd/pushd/shardstore"
)

// testHashCount is how many UAIDs the distribution tests place.
const testHashCount = 1_000_000

// testHashes returns the ring hashes of testHashCount random version-4
// UUIDs, from a fixed seed so the tests are deterministic.
var testHashes = sync.OnceValue(func() []uint64 {
	rng := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, testHashCount)
	for i := range hs {
		var u uuid.UUID
		for j := 0; j < 16; j += 8 {
			x := rng.Uint64()
			for b := range 8 {
				u[j+b] = byte(x >> (8 * b))
			}
		}
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		hs[i] = shardstore.RingHash(u)
	}
	return hs
})

// nodeNames returns n member names in the form nodes are named in.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%02d:7946", i)
	}
	return names
}

func TestRingPartitionOfAndRange(t *testing.T) {
	for _, p := range []int{0, 1, 12345, Partitions - 1} {
		lo, hi := PartitionRange(p)
		if PartitionOf(lo) != p || PartitionOf(hi) != p {
			t.Errorf("partition %d: range [%#x, %#x] maps to %d..%d", p, lo, hi, PartitionOf(lo), PartitionOf(hi))
		}
		if lo > 0 && PartitionOf(lo-1) != p-1 {
			t.Errorf("partition %d: %#x (lo-1) maps to %d", p, lo-1, PartitionOf(lo-1))
		}
		if hi < math.MaxUint64 && PartitionOf(hi+1) != p+1 {
			t.Errorf("partition %d: %#x (hi+1) maps to %d", p, hi+1, PartitionOf(hi+1))
		}
	}
	if lo, hi := PartitionRange(0); lo != 0 || hi != 1<<48-1 {
		t.Errorf("PartitionRange(0) = [%#x, %#x]", lo, hi)
	}
	if _, hi := PartitionRange(Partitions - 1); hi != math.MaxUint64 {
		t.Errorf("PartitionRange(last) hi = %#x", hi)
	}
}

func TestRingBalance(t *testing.T) {
	hs := testHashes()
	for _, n := range []int{3, 10, 50} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			r := NewRing(nodeNames(n), 1)
			counts := map[string]int{}
			for _, h := range hs {
				counts[r.Owner(h)]++
			}
			even := float64(len(hs)) / float64(n)
			minDev, maxDev := 0.0, 0.0
			minShare, maxShare := 0.0, 0.0
			for _, m := range r.Members() {
				dev := float64(counts[m])/even - 1
				share := r.Share(m)*float64(n) - 1
				minDev, maxDev = min(minDev, dev), max(maxDev, dev)
				minShare, maxShare = min(minShare, share), max(maxShare, share)
				if math.Abs(dev) > 0.10 {
					t.Errorf("%s owns %d UAIDs, %+.1f%% from even (%.0f)", m, counts[m], 100*dev, even)
				}
				if math.Abs(share) > 0.10 {
					t.Errorf("%s Share %.5f, %+.1f%% from even", m, r.Share(m), 100*share)
				}
			}
			if len(counts) != n {
				t.Errorf("%d distinct owners, want %d", len(counts), n)
			}
			t.Logf("%d members, %d UAIDs: owners %+.2f%%..%+.2f%% from even, Share %+.2f%%..%+.2f%%",
				n, len(hs), 100*minDev, 100*maxDev, 100*minShare, 100*maxShare)
		})
	}
}

func TestRingMinimalMovementOnJoin(t *testing.T) {
	hs := testHashes()
	before := NewRing(nodeNames(10), 1)
	const joiner = "node-10:7946"
	after := NewRing(append(nodeNames(10), joiner), 1)

	moved := 0
	for _, h := range hs {
		was, is := before.Owner(h), after.Owner(h)
		if was == is {
			continue
		}
		moved++
		if is != joiner {
			t.Fatalf("hash %#x moved from %s to %s, not to the joiner", h, was, is)
		}
	}
	frac := float64(moved) / float64(len(hs))
	t.Logf("join 10 -> 11: %d of %d UAIDs moved (%.4f; 1/11 = %.4f), all to the joiner", moved, len(hs), frac, 1.0/11)
	if frac < 0.8/11 || frac > 1.2/11 {
		t.Errorf("moved fraction %.4f outside [%.4f, %.4f]", frac, 0.8/11, 1.2/11)
	}
}

func TestRingMinimalMovementOnLeave(t *testing.T) {
	hs := testHashes()
	names := nodeNames(10)
	before := NewRing(names, 1)
	const leaver = "node-04:7946"
	after := NewRing(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == leaver }), 1)

	moved, owned := 0, 0
	for _, h := range hs {
		was, is := before.Owner(h), after.Owner(h)
		if was == leaver {
			owned++
		}
		if was == is {
			continue
		}
		moved++
		if was != leaver {
			t.Fatalf("hash %#x moved from %s to %s, but %s left", h, was, is, leaver)
		}
	}
	t.Logf("leave 10 -> 9: %d of %d UAIDs moved (%.4f; 1/10 = 0.1000), exactly the %d the leaver owned",
		moved, len(hs), float64(moved)/float64(len(hs)), owned)
	if moved != owned {
		t.Errorf("moved %d UAIDs, the leaver owned %d", moved, owned)
	}
}

func TestRingMinimalMovementOfPreferenceLists(t *testing.T) {
	const k = 2
	names := nodeNames(10)
	base := NewRing(names, k)

	const leaver = "node-04:7946"
	left := NewRing(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == leaver }), k)
	const joiner = "node-10:7946"
	joined := NewRing(append(slices.Clone(names), joiner), k)

	var changedLeave, changedJoin int
	for p := range Partitions {
		b := base.PartitionPreference(p, k)
		if l := left.PartitionPreference(p, k); !slices.Equal(b, l) {
			changedLeave++
			if !slices.Contains(b, leaver) {
				t.Fatalf("partition %d: list %v became %v although it did not contain the leaver", p, b, l)
			}
			// The survivors keep their order; one successor fills in.
			if want := slices.DeleteFunc(slices.Clone(b), func(s string) bool { return s == leaver }); !slices.Equal(l[:len(want)], want) {
				t.Fatalf("partition %d: list %v became %v, survivors reordered", p, b, l)
			}
		}
		if j := joined.PartitionPreference(p, k); !slices.Equal(b, j) {
			changedJoin++
			if !slices.Contains(j, joiner) {
				t.Fatalf("partition %d: list %v became %v without the joiner entering it", p, b, j)
			}
		}
	}
	t.Logf("k=2 lists of %d partitions: leave changed %d (%.4f; 2/10 = 0.2), join changed %d (%.4f; 2/11 = %.4f)",
		Partitions, changedLeave, float64(changedLeave)/Partitions, changedJoin, float64(changedJoin)/Partitions, 2.0/11)
	if f := float64(changedLeave) / Partitions; f < 0.8*2/10 || f > 1.2*2/10 {
		t.Errorf("leave changed fraction %.4f of lists, want about 2/10", f)
	}
	if f := float64(changedJoin) / Partitions; f < 0.8*2/11 || f > 1.2*2/11 {
		t.Errorf("join changed fraction %.4f of lists, want about 2/11", f)
	}
}

func TestRingDeterministic(t *testing.T) {
	names := nodeNames(10)
	shuffled := slices.Clone(names)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	withDups := append(slices.Clone(shuffled), names[3], names[7])

	const k = 3
	a, b, c := NewRing(names, k), NewRing(shuffled, k), NewRing(withDups, k)
	if !slices.Equal(a.Members(), names) || !slices.Equal(c.Members(), names) || c.Len() != len(names) {
		t.Fatalf("Members = %v / %v, want the sorted distinct names", a.Members(), c.Members())
	}
	for p := range Partitions {
		pa := a.PartitionPreference(p, k)
		if pb, pc := b.PartitionPreference(p, k), c.PartitionPreference(p, k); !slices.Equal(pa, pb) || !slices.Equal(pa, pc) {
			t.Fatalf("partition %d: %v / %v / %v for the same members", p, pa, pb, pc)
		}
		if len(pa) != k {
			t.Fatalf("partition %d: %d entries, want %d", p, len(pa), k)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(pa)))) != k {
			t.Fatalf("partition %d: entries not distinct: %v", p, pa)
		}
		if o := a.OwnerOfPartition(p); o != pa[0] {
			t.Fatalf("partition %d: OwnerOfPartition %s, preference %v", p, o, pa)
		}
	}
	for _, h := range testHashes()[:10000] {
		if o, pref := a.Owner(h), a.Preference(h, 1); len(pref) != 1 || o != pref[0] {
			t.Fatalf("hash %#x: Owner %s, Preference(h, 1) %v", h, o, pref)
		}
		if got, want := a.AppendPreference([]string{"x"}, h, 2), append([]string{"x"}, a.Preference(h, 2)...); !slices.Equal(got, want) {
			t.Fatalf("hash %#x: AppendPreference %v, want %v", h, got, want)
		}
	}
}

// TestRingRankingMatchesSort checks the top-k insertion used for small k
// against the full sort used for large k.
func TestRingRankingMatchesSort(t *testing.T) {
	names := nodeNames(20)
	small := NewRing(names, insertionRankMax)
	full := NewRing(names, len(names))
	for p := range Partitions {
		if a, b := small.PartitionPreference(p, insertionRankMax), full.PartitionPreference(p, insertionRankMax); !slices.Equal(a, b) {
			t.Fatalf("partition %d: insertion %v, sort %v", p, a, b)
		}
	}
}

func TestRingLimits(t *testing.T) {
	r := NewRing(nodeNames(3), 5)
	h := testHashes()[0]
	if got := r.Preference(h, 10); len(got) != 3 {
		t.Errorf("k=5 over 3 members, Preference(h, 10) = %v, want all 3", got)
	}
	if got := NewRing(nodeNames(5), 2).Preference(h, 10); len(got) != 2 {
		t.Errorf("k=2, Preference(h, 10) = %v, want 2", got)
	}
	if got := r.Preference(h, 0); got != nil {
		t.Errorf("Preference(h, 0) = %v, want nil", got)
	}
	if got := r.Share("node-99:7946"); got != 0 {
		t.Errorf("Share of a stranger = %v", got)
	}
	mustPanic(t, "NewRing k=0", func() { NewRing(nodeNames(3), 0) })
	mustPanic(t, "partition -1", func() { r.OwnerOfPartition(-1) })
	mustPanic(t, "partition Partitions", func() { r.PartitionPreference(Partitions, 1) })
	mustPanic(t, "empty ring, partition Partitions", func() { NewRing(nil, 1).OwnerOfPartition(Partitions) })
}

func TestRingEmpty(t *testing.T) {
	r := NewRing(nil, 3)
	h := testHashes()[0]
	if r.Len() != 0 || len(r.Members()) != 0 {
		t.Errorf("Len %d, Members %v", r.Len(), r.Members())
	}
	if o := r.Owner(h); o != "" {
		t.Errorf("Owner = %q", o)
	}
	if o := r.OwnerOfPartition(0); o != "" {
		t.Errorf("OwnerOfPartition = %q", o)
	}
	if p := r.Preference(h, 3); p != nil {
		t.Errorf("Preference = %v", p)
	}
	if p := r.AppendPreference([]string{"x"}, h, 3); !slices.Equal(p, []string{"x"}) {
		t.Errorf("AppendPreference = %v", p)
	}
	if s := r.Share("a"); s != 0 {
		t.Errorf("Share = %v", s)
	}
}

func TestRingSingleMember(t *testing.T) {
	const only = "node-00:7946"
	r := NewRing([]string{only, only}, 3)
	if r.Len() != 1 {
		t.Fatalf("Len = %d", r.Len())
	}
	for _, h := range testHashes()[:1000] {
		if o := r.Owner(h); o != only {
			t.Fatalf("Owner = %q", o)
		}
		if p := r.Preference(h, 3); !slices.Equal(p, []string{only}) {
			t.Fatalf("Preference = %v", p)
		}
	}
	if s := r.Share(only); s != 1 {
		t.Errorf("Share = %v, want 1", s)
	}
}

func TestRingLookupDoesNotAllocate(t *testing.T) {
	r := NewRing(nodeNames(10), 3)
	h := testHashes()[0]
	buf := make([]string, 0, 3)
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Owner(h)
		buf = r.AppendPreference(buf[:0], h, 3)
	}); n != 0 {
		t.Errorf("Owner + AppendPreference: %v allocations", n)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}
