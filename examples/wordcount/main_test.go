package main

import (
	"testing"

	"github.com/weirstream/weir/sdk/sdktest"
)

func TestSplit(t *testing.T) {
	h, err := sdktest.New("split", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"To be, or not to be: THAT is the question.", "", "  ÉTÉ été l'an 2024!"} {
		if err := h.Record("", line, 1); err != nil {
			t.Fatal(err)
		}
	}
	want := `main "to"="to" @1
main "be"="be" @1
main "or"="or" @1
main "not"="not" @1
main "to"="to" @1
main "be"="be" @1
main "that"="that" @1
main "is"="is" @1
main "the"="the" @1
main "question"="question" @1
main "été"="été" @1
main "été"="été" @1
main "l"="l" @1
main "an"="an" @1
main "2024"="2024" @1
`
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestCount(t *testing.T) {
	h, err := sdktest.New("count", sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"to", "be", "or", "not", "to", "be", "to"} {
		if err := h.Record(w, w, 1); err != nil {
			t.Fatal(err)
		}
	}
	want := `main "to"="1" @1
main "be"="1" @1
main "or"="1" @1
main "not"="1" @1
main "to"="2" @1
main "be"="2" @1
main "to"="3" @1
`
	if got := sdktest.Format(h.TakeOutput()); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
