package roman

import "testing"

var cases = []struct {
	n     int
	roman string
}{
	{1, "I"}, {4, "IV"}, {9, "IX"}, {14, "XIV"}, {40, "XL"}, {90, "XC"},
	{400, "CD"}, {1994, "MCMXCIV"}, {2024, "MMXXIV"}, {3999, "MMMCMXCIX"},
}

func TestToRoman(t *testing.T) {
	for _, c := range cases {
		got, err := ToRoman(c.n)
		if err != nil || got != c.roman {
			t.Errorf("ToRoman(%d) = %q, %v; want %q", c.n, got, err, c.roman)
		}
	}
}

func TestFromRoman(t *testing.T) {
	for _, c := range cases {
		got, err := FromRoman(c.roman)
		if err != nil || got != c.n {
			t.Errorf("FromRoman(%q) = %d, %v; want %d", c.roman, got, err, c.n)
		}
	}
}

func TestFromRomanRejectsJunk(t *testing.T) {
	if _, err := FromRoman("XQ"); err == nil {
		t.Error("FromRoman(\"XQ\") accepted a bad symbol")
	}
}
