// Package roman converts between integers and Roman numerals (1 to 3999).
package roman

import (
	"fmt"
	"strings"
)

var numerals = []struct {
	value  int
	symbol string
}{
	{1000, "M"}, {900, "CM"}, {500, "D"}, {400, "CD"},
	{100, "C"}, {90, "XC"}, {50, "L"}, {40, "XL"},
	{10, "X"}, {9, "IX"}, {5, "V"}, {4, "IV"}, {1, "I"},
}

// ToRoman writes n as a Roman numeral.
func ToRoman(n int) (string, error) {
	if n < 1 || n > 3999 {
		return "", fmt.Errorf("roman: %d is out of range 1..3999", n)
	}
	var b strings.Builder
	for _, num := range numerals {
		for n >= num.value {
			b.WriteString(num.symbol)
			n -= num.value
		}
	}
	return b.String(), nil
}

var symbolValues = map[byte]int{'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}

// FromRoman reads a Roman numeral.
func FromRoman(s string) (int, error) {
	total := 0
	for i := 0; i < len(s); i++ {
		v, ok := symbolValues[s[i]]
		if !ok {
			return 0, fmt.Errorf("roman: bad symbol %q in %q", s[i], s)
		}
		total += v
	}
	return total, nil
}
