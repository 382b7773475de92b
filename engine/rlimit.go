package engine

import (
	"fmt"
	"syscall"
)

// fdReserve is how many descriptors a node keeps back from client
// connections for everything else it opens: Pebble's files, HTTP
// connections, inter-node sockets, the listeners.
// It is a tenth of the limit, but at least 512 (or half of a small limit).
func fdReserve(limit uint64) uint64 {
	return max(limit/10, min(512, limit/2))
}

// maxHTTPConns is the fasthttp concurrency cap taken out of the reserve:
// half of it, which leaves the other half for the store's files
// (storeFiles, at most a quarter) and the rest.
func maxHTTPConns(limit uint64) int {
	return int(fdReserve(limit) / 2)
}

// storeFiles is how many files the store may keep open, taken out of the
// reserve: 256, or a quarter of a small reserve.
func storeFiles(limit uint64) int {
	return int(min(256, max(16, fdReserve(limit)/4)))
}

// raiseFileLimit raises the soft open-files limit to the hard limit and
// returns the resulting soft limit.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("engine: getrlimit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("engine: setrlimit: %w", err)
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("engine: getrlimit: %w", err)
		}
	}
	return rl.Cur, nil
}

// connCap derives the client connection cap from the open-files limit: the
// configured cap if it fits under the limit with the reserve kept, else the
// largest that does.
func connCap(configured int, limit uint64) int {
	max := int(limit) - int(fdReserve(limit))
	if max < 1 {
		max = 1
	}
	if configured > 0 && configured < max {
		return configured
	}
	return max
}
