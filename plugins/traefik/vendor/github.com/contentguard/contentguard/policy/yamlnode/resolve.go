package yamlnode

import (
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/policy"
)

// resolve gives a plain (unquoted) scalar its type by YAML 1.2's core
// schema, exactly as go.yaml.in/yaml/v3 does, quirks included: "08" is a
// float, "0x1F", "0o17", "0b101" and "1_000" are ints, an int too large for
// 64 bits is a float, and timestamps stay strings. Booleans are written in
// lower case; every other value keeps its text.
func resolve(v string) (policy.Kind, string, string) {
	switch v {
	case "", "~", "null", "Null", "NULL":
		return policy.Null, "null", v
	case "true", "True", "TRUE":
		return policy.Scalar, "bool", "true"
	case "false", "False", "FALSE":
		return policy.Scalar, "bool", "false"
	case ".nan", ".NaN", ".NAN",
		".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
		return policy.Scalar, "float", v
	}
	c := v[0]
	if c == '.' {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return policy.Scalar, "float", v
		}
		return policy.Scalar, "str", v
	}
	if c != '+' && c != '-' && (c < '0' || c > '9') {
		return policy.Scalar, "str", v
	}
	if tag := isNumber(strings.ReplaceAll(v, "_", "")); tag != "" {
		return policy.Scalar, tag, v
	}
	return policy.Scalar, "str", v
}

// isNumber reports "int", "float" or "" for a scalar without underscores
// that starts with a sign or a digit.
func isNumber(s string) string {
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		return "int"
	}
	if _, err := strconv.ParseUint(s, 0, 64); err == nil {
		return "int"
	}
	if isFloatSyntax(s) {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return "float"
		}
	}
	// Binary and octal prefixes, which yaml/v3 also tries with a sign
	// after them ("0b-1" is an int there).
	for _, base := range []int{2, 8} {
		prefix := "0b"
		if base == 8 {
			prefix = "0o"
		}
		if strings.HasPrefix(s, prefix) {
			if parsesAs(s[2:], base) {
				return "int"
			}
		} else if strings.HasPrefix(s, "-"+prefix) {
			if _, err := strconv.ParseInt("-"+s[3:], base, 64); err == nil {
				return "int"
			}
		}
	}
	return ""
}

func parsesAs(s string, base int) bool {
	if _, err := strconv.ParseInt(s, base, 64); err == nil {
		return true
	}
	_, err := strconv.ParseUint(s, base, 64)
	return err == nil
}

// isFloatSyntax matches yaml/v3's float syntax,
// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, without a regexp.
func isFloatSyntax(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	intPart := skipDigits(s, i)
	if intPart == i {
		if intPart >= len(s) || s[intPart] != '.' {
			return false
		}
		i = skipDigits(s, intPart+1)
		if i == intPart+1 {
			return false
		}
	} else {
		i = intPart
		if i < len(s) && s[i] == '.' {
			i = skipDigits(s, i+1)
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := skipDigits(s, i)
		if exp == i {
			return false
		}
		i = exp
	}
	return i == len(s)
}

func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
