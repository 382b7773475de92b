package bench

import (
	"bytes"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pushd/pushd/internal/proctest"
)

// TestHellosScenarioBrief runs the connection-ramp scenario for a moment
// against pushd and the holder: both complete connections without errors.
func TestHellosScenarioBrief(t *testing.T) {
	pushd := buildPushd(t)
	pushbench, err := proctest.Build(t.TempDir(), "../cmd/pushbench", "pushbench", false)
	if err != nil {
		t.Fatalf("building pushbench: %v", err)
	}
	res, err := RunHellos(t.Context(), HellosConfig{
		PushdBin: pushd, BenchBin: pushbench, Parallel: 4, Rounds: 1,
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Progress: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]HellosSide{"pushd": res.Pushd, "holder": res.Holder} {
		if s.Rate <= 0 || s.Conns == 0 || s.Errors != 0 || s.SelfCPU < 0 || s.ServerCPU < 0 {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if res.Ratio <= 0 {
		t.Errorf("ratio %v", res.Ratio)
	}
}

// TestReadServerFrameByteByByte reads a short and a 16-bit-length frame
// delivered one byte at a time, after bytes read with the handshake.
func TestReadServerFrameByteByByte(t *testing.T) {
	for _, size := range []int{0, 60, 125, 126, 300} {
		payload := bytes.Repeat([]byte("x"), size)
		frame := []byte{0x81, byte(size)}
		if size >= 126 {
			frame = []byte{0x81, 126, byte(size >> 8), byte(size)}
		}
		frame = append(frame, payload...)
		buf := make([]byte, 1024)
		n := copy(buf, frame[:1])
		got, err := readServerFrame(iotest.OneByteReader(bytes.NewReader(frame[1:])), buf, n)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
}
