package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// marshalTOML writes cfg as a TOML file that LoadConfig reads back, with the
// sections and keys in the order of Config.
func marshalTOML(cfg Config) []byte {
	var b bytes.Buffer
	v := reflect.ValueOf(cfg)
	cur := ""
	for _, l := range leaves {
		sec, name, _ := strings.Cut(l.key, ".")
		if sec != cur {
			if cur != "" {
				b.WriteByte('\n')
			}
			b.WriteString("[" + sec + "]\n")
			cur = sec
		}
		b.WriteString(name + " = ")
		b.Write(jsonValue(plainValue(v.FieldByIndex(l.index))))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// marshalJSON writes cfg as an indented JSON object of sections, in the
// order of Config.
func marshalJSON(cfg Config) []byte {
	var b bytes.Buffer
	v := reflect.ValueOf(cfg)
	cur := ""
	b.WriteString("{")
	for _, l := range leaves {
		sec, name, _ := strings.Cut(l.key, ".")
		if sec != cur {
			if cur != "" {
				b.WriteString("\n  },")
			}
			b.WriteString("\n  " + string(jsonValue(sec)) + ": {")
			cur = sec
		} else {
			b.WriteString(",")
		}
		b.WriteString("\n    " + string(jsonValue(name)) + ": ")
		b.Write(jsonValue(plainValue(v.FieldByIndex(l.index))))
	}
	b.WriteString("\n  }\n}\n")
	return b.Bytes()
}

// jsonValue is compact JSON without HTML escaping; for strings, numbers,
// booleans and string arrays it is valid TOML as well.
func jsonValue(x any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return []byte(`""`)
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	if bytes.HasPrefix(out, []byte("[")) {
		out = bytes.ReplaceAll(out, []byte(`","`), []byte(`", "`))
	}
	return out
}
