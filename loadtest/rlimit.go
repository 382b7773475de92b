package loadtest

import (
	"fmt"
	"syscall"
)

// openFileLimit raises the soft open-files limit to the hard one and
// returns it.
func openFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("loadtest: open-files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	return lim.Cur, nil
}

// connsPerProcess is how many connections one process may hold: the
// configured cap, else the open-files limit less a reserve for the
// descriptors a run needs besides its connections (a duplicate per dial in
// progress, PUT connections, pollers, the executable's own).
func connsPerProcess(cfg Config) (int, error) {
	if cfg.MaxConnsPerProcess > 0 {
		return cfg.MaxConnsPerProcess, nil
	}
	limit, err := openFileLimit()
	if err != nil {
		return 0, err
	}
	reserve := uint64(2*cfg.Parallel + cfg.PutConns + 256)
	reserve = max(reserve, limit/20)
	if limit <= reserve+16 {
		return 16, nil
	}
	return int(limit - reserve), nil
}
