package cluster

import (
	"fmt"
	"testing"
)

var benchRingSizes = []int{3, 10, 50, 200}

func BenchmarkRingOwner(b *testing.B) {
	hs := testHashes()[:1<<16]
	for _, n := range benchRingSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := NewRing(nodeNames(n), 3)
			b.ReportAllocs()
			var sink string
			i := 0
			for b.Loop() {
				sink = r.Owner(hs[i&(1<<16-1)])
				i++
			}
			_ = sink
		})
	}
}

func BenchmarkRingAppendPreference(b *testing.B) {
	hs := testHashes()[:1<<16]
	for _, n := range benchRingSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := NewRing(nodeNames(n), 3)
			buf := make([]string, 0, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf = r.AppendPreference(buf[:0], hs[i&(1<<16-1)], 3)
				i++
			}
		})
	}
}

func BenchmarkRingNew(b *testing.B) {
	for _, k := range []int{1, 3} {
		for _, n := range benchRingSizes {
			b.Run(fmt.Sprintf("members=%d/k=%d", n, k), func(b *testing.B) {
				names := nodeNames(n)
				b.ReportAllocs()
				for b.Loop() {
					NewRing(names, k)
				}
			})
		}
	}
}
