package token

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the name of the key file LoadOrCreate keeps in a node's
// data directory.
const KeyFileName = "token.keys"

// LoadOrCreate returns the keyring for a node. If configured (the
// -token-keys flag or PUSHD_TOKEN_KEYS) is not blank it is parsed with
// ParseKeys and used, and dir is not touched. Otherwise the keys are read
// from dir/token.keys: one key per line, the first line seals, blank lines
// and lines starting with '#' are skipped. If that file does not exist, a
// new key is generated and written there with mode 0600 (dir is created
// with mode 0700 if needed); the file appears atomically and complete, and
// an existing file is never replaced, so two processes racing on one dir
// end up with the same key.
func LoadOrCreate(dir, configured string) (*Keyring, error) {
	if strings.TrimSpace(configured) != "" {
		keys, err := ParseKeys(configured)
		if err != nil {
			return nil, fmt.Errorf("token: configured keys: %w", err)
		}
		return NewKeyring(keys)
	}
	path := filepath.Join(dir, KeyFileName)
	keys, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		keys, err = createKeyFile(dir, path)
	}
	if err != nil {
		return nil, err
	}
	return NewKeyring(keys)
}

// readKeyFile reads the keys of a key file. A missing file gives an error
// that matches fs.ErrNotExist; a file with no key is an error, never a
// reason to overwrite it.
func readKeyFile(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read key file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := parseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%w at %s:%d: %w", ErrBadKey, path, line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token: read key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoKeys, path)
	}
	return keys, nil
}

// createKeyFile generates a key and publishes it at path: written to a
// temporary file in dir, synced, hard-linked into place (which fails
// rather than replacing a file another process published first), and the
// directory synced. Where hard links are not supported it falls back to
// rename. If another process won the race, its file is read instead.
func createKeyFile(dir, path string) ([][]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token: create key dir: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	content := "# pushd token keys: one per line, the first seals, all open.\n" +
		"# Every node of a cluster needs the same keys. Keep this file secret.\n" +
		FormatKey(key) + "\n"

	tmp, err := os.CreateTemp(dir, "."+KeyFileName+".tmp-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("token: create key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a successful link or rename: a no-op or the spare name
	if err := writeAndSync(tmp, content); err != nil {
		return nil, fmt.Errorf("token: write key file: %w", err)
	}

	err = os.Link(tmpName, path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return readKeyFile(path)
	case err != nil:
		if err := os.Rename(tmpName, path); err != nil {
			return nil, fmt.Errorf("token: install key file: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("token: sync key dir: %w", err)
	}
	return [][]byte{key}, nil
}

func writeAndSync(f *os.File, content string) error {
	_, err := f.WriteString(content)
	if err == nil {
		err = f.Chmod(0o600) // CreateTemp uses 0600 already; make it explicit
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
