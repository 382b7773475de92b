package bench

import (
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time in clock ticks, from the first line
// of /proc/stat: all of it, and the part stolen by the hypervisor for
// other guests.
type cpuTimes struct{ total, steal uint64 }

// readCPUTimes reads /proc/stat; ok is false where there is none.
func readCPUTimes() (t cpuTimes, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user and nice.
	if len(f) < 9 || f[0] != "cpu" {
		return t, false
	}
	for i, s := range f[1:9] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return t, false
		}
		t.total += v
		if i == 7 {
			t.steal = v
		}
	}
	return t, true
}

// stealSince returns the percentage of the machine's CPU time stolen by
// the hypervisor since from, or -1 where it cannot be read.
func stealSince(from cpuTimes, fromOK bool) float64 {
	to, ok := readCPUTimes()
	if !ok || !fromOK || to.total <= from.total {
		return -1
	}
	return 100 * float64(to.steal-from.steal) / float64(to.total-from.total)
}
