package engine

import "testing"

func TestConnCap(t *testing.T) {
	tests := []struct {
		configured int
		limit      uint64
		want       int
	}{
		{0, 20000, 18000},
		{15000, 20000, 15000},
		{30000, 20000, 18000},
		{0, 1024, 512},
		{0, 300, 150},
		{0, 1 << 20, 1<<20 - 1<<20/10},
	}
	for _, tt := range tests {
		if got := connCap(tt.configured, tt.limit); got != tt.want {
			t.Errorf("connCap(%d, %d) = %d, want %d", tt.configured, tt.limit, got, tt.want)
		}
	}
}
