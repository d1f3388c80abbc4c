package meta

import (
	"fmt"
	"testing"
)

func TestStoreRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(map[string][]byte{"t/a": []byte("1"), "t/b": []byte("2"), "t0/x": []byte("3"), "u/a": []byte("4")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(map[string][]byte{"t/c": []byte("5")}, []string{"t/a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	if err := s.Scan("t/", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "[t/b=2 t/c=5]"; fmt.Sprint(got) != want {
		t.Fatalf("scan t/ = %v, want %s", got, want)
	}
	n := 0
	if err := s.Scan("", func(string, []byte) error { n++; return nil }); err != nil || n != 4 {
		t.Fatalf("scan of everything: %d keys, %v; want 4", n, err)
	}
	if _, ok, err := s.Get("t/a"); ok || err != nil {
		t.Fatalf("deleted key: ok=%v err=%v", ok, err)
	}
	if v, ok, err := s.Get("u/a"); !ok || err != nil || string(v) != "4" {
		t.Fatalf("get u/a = %q %v %v", v, ok, err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"a", "b"}, {"a\xff", "b"}, {"", ""}, {"\xff\xff", ""}} {
		if got := string(prefixEnd([]byte(c.in))); got != c.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
