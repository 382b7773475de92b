package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateCreatesThenRereads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "node1") // does not exist yet
	k1, err := LoadOrCreate(dir, "")
	if err != nil {
		t.Fatalf("first LoadOrCreate: %v", err)
	}
	path := filepath.Join(dir, KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("key file mode %v, want 0600", mode)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode := di.Mode().Perm(); mode != 0o700 {
		t.Fatalf("created dir mode %v, want 0700", mode)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only %s (temp file left behind?)", len(entries), KeyFileName)
	}

	tok := k1.Seal(uaid1, chid1)
	k2, err := LoadOrCreate(dir, "")
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if got := k2.Seal(uaid1, chid1); got != tok {
		t.Fatal("second LoadOrCreate made a different key")
	}
	mustOpen(t, k2, tok)
}

func TestLoadOrCreateConfiguredWins(t *testing.T) {
	dir := t.TempDir()
	configured := FormatKey(testKey(5)) + ", " + FormatKey(testKey(6))
	k, err := LoadOrCreate(dir, configured)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Seal(uaid1, chid1), testKeyring(t, testKey(5)).Seal(uaid1, chid1); got != want {
		t.Fatal("configured first key does not seal")
	}
	mustOpen(t, k, testKeyring(t, testKey(6)).Seal(uaid1, chid1))
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("configured keys still touched the key file: %v", err)
	}

	if _, err := LoadOrCreate(dir, "not-a-key"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("bad configured key: %v", err)
	}
}

func TestLoadOrCreateReadsFile(t *testing.T) {
	dir := t.TempDir()
	content := "# rotated 2025-01-01\n\n  " + FormatKey(testKey(8)) + "  \n# old\n" + FormatKey(testKey(9)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreate(dir, "   ")
	if err != nil {
		t.Fatal(err)
	}
	if k.Seal(uaid1, chid1) != testKeyring(t, testKey(8)).Seal(uaid1, chid1) {
		t.Fatal("first key line does not seal")
	}
	mustOpen(t, k, testKeyring(t, testKey(9)).Seal(uaid1, chid1))
}

func TestLoadOrCreateBadFileIsNotReplaced(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    error
	}{
		{"# nothing here\n\n", ErrNoKeys},
		{"", ErrNoKeys},
		{FormatKey(testKey(1)) + "\ngarbage\n", ErrBadKey},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, KeyFileName)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreate(dir, "")
		if !errors.Is(err, tc.want) {
			t.Fatalf("content %q: %v, want %v", tc.content, err, tc.want)
		}
		if tc.want == ErrBadKey && !strings.Contains(err.Error(), ":2") {
			t.Errorf("error %q does not name the line", err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != tc.content {
			t.Fatalf("bad key file was rewritten to %q", got)
		}
	}
}

// Concurrent first starts on one directory must agree on one key.
func TestLoadOrCreateRace(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreate(dir, "")
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = k.Seal(uaid1, chid1)
		})
	}
	wg.Wait()
	for i := range toks {
		if toks[i] != toks[0] {
			t.Fatalf("LoadOrCreate %d got a different key", i)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(entries))
	}
}
