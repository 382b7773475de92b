package cluster

import (
	"fmt"
	"slices"
	"sort"

	"github.com/cespare/xxhash/v2"
)

// PartitionBits is how many of the top bits of a UAID's ring hash select its
// partition.
const PartitionBits = 16

// Partitions is the number of ring partitions. It is fixed: it does not grow
// with the cluster, so a partition is always the same contiguous range of
// ring hashes and therefore of store keys.
const Partitions = 1 << PartitionBits

// maxRingMembers is the most members a Ring can rank: member indices are
// stored as uint16.
const maxRingMembers = 1<<16 - 1

// PartitionOf returns the partition of ring hash h (shardstore.RingHash of a
// UAID): its top PartitionBits bits.
func PartitionOf(h uint64) int {
	return int(h >> (64 - PartitionBits))
}

// PartitionRange returns the inclusive bounds of the ring hashes in partition
// p: lo <= h <= hi exactly when PartitionOf(h) == p. Because store keys start
// with the ring hash big-endian, they are also the bounds of one contiguous
// key range. It panics if p is not in [0, Partitions).
func PartitionRange(p int) (lo, hi uint64) {
	checkPartition(p)
	lo = uint64(p) << (64 - PartitionBits)
	return lo, lo | (1<<(64-PartitionBits) - 1)
}

// Ring places UAIDs on members by rendezvous (highest-random-weight) hashing
// over a fixed number of partitions.
//
// A UAID's partition is the top PartitionBits bits of its ring hash. For each
// partition, every member gets a score that depends only on the member's name
// and the partition (a 64-bit mix of the name's xxhash and the partition
// number), and the members ranked by descending score are the partition's
// preference list: the first is its owner, the next ones its replicas.
//
// Why rendezvous hashing rather than a ring of virtual nodes: a member's
// score never depends on who else is in the cluster, so movement is minimal
// by construction (a join moves only the partitions the new member wins, a
// leave only the leaver's partitions, and every preference list changes only
// where the joiner enters it or the leaver drops out of it), and balance
// comes from Partitions independent draws rather than from tuning a number
// of virtual nodes. Scoring every member for every partition costs
// O(Partitions * members), which is why it happens once, in NewRing: the
// top k of each partition are kept in one flat table, so lookups are O(1)
// and allocation-free, and a ring takes 2*k bytes per partition (128 KiB
// per unit of k).
//
// A Ring is immutable once built and safe for concurrent use; a membership
// change builds a new one.
type Ring struct {
	members []string // sorted, distinct
	k       int      // ranks kept per partition; 0 for an empty ring

	// prefs holds, for partition p, the indices into members of its top k
	// members in rank order at prefs[p*k : p*k+k].
	prefs []uint16

	// owned[i] is how many partitions members[i] owns (ranks first in).
	owned []int
}

// NewRing builds the ring of members, keeping the top k members of every
// partition (k is capped at the number of members). Members are deduplicated
// and sorted, so their order does not matter. With no members, lookups
// return "" or nil. It panics if k < 1 or if there are more than 65535
// distinct members.
func NewRing(members []string, k int) *Ring {
	if k < 1 {
		panic(fmt.Sprintf("cluster: NewRing with k = %d, want >= 1", k))
	}
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > maxRingMembers {
		panic(fmt.Sprintf("cluster: NewRing with %d members, at most %d supported", len(names), maxRingMembers))
	}
	r := &Ring{members: names, owned: make([]int, len(names))}
	if len(names) == 0 {
		return r
	}
	r.k = min(k, len(names))
	r.prefs = make([]uint16, Partitions*r.k)

	seeds := make([]uint64, len(names))
	for i, name := range names {
		seeds[i] = xxhash.Sum64String(name)
	}
	if r.k <= insertionRankMax {
		r.rankInsertion(seeds)
	} else {
		r.rankSort(seeds)
	}
	for p := range Partitions {
		r.owned[r.prefs[p*r.k]]++
	}
	return r
}

// insertionRankMax is the largest k ranked by insertion into a top-k buffer;
// larger k sort every partition's full member list instead.
const insertionRankMax = 8

// rankInsertion fills r.prefs keeping a sorted top-k buffer per partition:
// O(members * k) per partition, the common case (k is the replication
// factor).
func (r *Ring) rankInsertion(seeds []uint64) {
	k := r.k
	var scores [insertionRankMax]uint64
	for p := range Partitions {
		top := r.prefs[p*k : p*k+k]
		n := 0 // filled entries of top
		for i, seed := range seeds {
			s := score(seed, p)
			if n == k && !outranks(s, i, scores[k-1], int(top[k-1])) {
				continue
			}
			j := min(n, k-1) // slot freed for the new entry
			for j > 0 && outranks(s, i, scores[j-1], int(top[j-1])) {
				scores[j], top[j] = scores[j-1], top[j-1]
				j--
			}
			scores[j], top[j] = s, uint16(i)
			if n < k {
				n++
			}
		}
	}
}

// rankSort fills r.prefs by sorting all members of every partition.
func (r *Ring) rankSort(seeds []uint64) {
	k := r.k
	type ranked struct {
		score uint64
		idx   int
	}
	all := make([]ranked, len(seeds))
	for p := range Partitions {
		for i, seed := range seeds {
			all[i] = ranked{score(seed, p), i}
		}
		sort.Slice(all, func(a, b int) bool {
			return outranks(all[a].score, all[a].idx, all[b].score, all[b].idx)
		})
		for j := range k {
			r.prefs[p*k+j] = uint16(all[j].idx)
		}
	}
}

// outranks reports whether the member with index i and score s ranks before
// the member with index j and score t: higher scores first, and on the
// (vanishingly rare) equal score the lower index, so rankings are total and
// deterministic.
func outranks(s uint64, i int, t uint64, j int) bool {
	return s > t || (s == t && i < j)
}

// score is the rendezvous weight of the member whose name hashes to seed for
// partition p: the seed combined with p, then put through the SplitMix64
// finaliser (Stafford's Mix13), so that scores of different members for the
// same partition, and of one member for different partitions, behave as
// independent uniform draws. Changing it moves every UAID.
func score(seed uint64, p int) uint64 {
	x := seed ^ (uint64(p)+1)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Members returns the ring's members, sorted and distinct. The slice is a
// copy the caller may keep.
func (r *Ring) Members() []string {
	return slices.Clone(r.members)
}

// Len returns the number of members.
func (r *Ring) Len() int {
	return len(r.members)
}

// Owner returns the member that owns ring hash h: the first in its
// preference list; "" for an empty ring.
func (r *Ring) Owner(h uint64) string {
	return r.OwnerOfPartition(PartitionOf(h))
}

// OwnerOfPartition returns the owner of partition p; "" for an empty ring.
// It panics if p is not in [0, Partitions).
func (r *Ring) OwnerOfPartition(p int) string {
	if r.k == 0 {
		checkPartition(p)
		return ""
	}
	return r.members[r.prefs[p*r.k]]
}

// Preference returns the first min(n, k, Len()) members of the preference
// list of ring hash h, in rank order, distinct; nil if that is none. It
// allocates the result; AppendPreference does not.
func (r *Ring) Preference(h uint64, n int) []string {
	return r.PartitionPreference(PartitionOf(h), n)
}

// AppendPreference appends what Preference(h, n) returns to dst and returns
// the extended slice. It does not allocate when dst has room.
func (r *Ring) AppendPreference(dst []string, h uint64, n int) []string {
	return r.appendPartition(dst, PartitionOf(h), n)
}

// PartitionPreference returns the first min(n, k, Len()) members of the
// preference list of partition p, in rank order; nil if that is none. It
// panics if p is not in [0, Partitions).
func (r *Ring) PartitionPreference(p int, n int) []string {
	return r.appendPartition(nil, p, n)
}

func (r *Ring) appendPartition(dst []string, p int, n int) []string {
	n = min(n, r.k)
	if n <= 0 {
		checkPartition(p)
		return dst
	}
	for _, i := range r.prefs[p*r.k : p*r.k+n] {
		dst = append(dst, r.members[i])
	}
	return dst
}

// Share returns the fraction of partitions that member owns (ranks first
// in), and 0 for a name that is not a member.
func (r *Ring) Share(member string) float64 {
	i, ok := slices.BinarySearch(r.members, member)
	if !ok {
		return 0
	}
	return float64(r.owned[i]) / Partitions
}

func checkPartition(p int) {
	if p < 0 || p >= Partitions {
		panic(fmt.Sprintf("cluster: partition %d out of range [0, %d)", p, Partitions))
	}
}
