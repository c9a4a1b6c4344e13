package jinja

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"sort"
)

// Dict is Python's dict: a map that keeps the order its keys were first
// inserted in. Keys are hashable values (str, int, float, bool, None,
// tuples of those); 1, 1.0 and True are one key, as in Python.
type Dict struct {
	keys []any
	vals map[any]any // by hash key
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{vals: map[any]any{}} }

// Set sets key to v, keeping key's place if it is there already.
func (d *Dict) Set(key string, v any) { _ = d.put(key, v) }

// Get returns the value of key.
func (d *Dict) Get(key string) (any, bool) {
	v, ok := d.vals[key]
	return v, ok
}

// Len returns the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

// All iterates over the keys and values in order.
func (d *Dict) All() iter.Seq2[any, any] {
	return func(yield func(any, any) bool) {
		for _, k := range d.keys {
			h, _ := hashKey(k)
			if !yield(k, d.vals[h]) {
				return
			}
		}
	}
}

// Copy returns a shallow copy of d.
func (d *Dict) Copy() *Dict {
	c := &Dict{keys: append([]any(nil), d.keys...), vals: make(map[any]any, len(d.vals))}
	for k, v := range d.vals {
		c.vals[k] = v
	}
	return c
}

// tupleKey is the hash key of a tuple.
type tupleKey string

// noneKey is the hash key of None.
type noneKey struct{}

// hashKey returns the Go map key for a Python key.
func hashKey(k any) (any, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case int64:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), nil
		}
		return x, nil
	case nil:
		return noneKey{}, nil
	case Markup:
		return string(x), nil
	case tuple:
		var b bytes.Buffer
		for _, e := range x {
			h, err := hashKey(e)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "%T:%v\x00", h, h)
		}
		return tupleKey(b.String()), nil
	}
	return nil, typeErrorf("unhashable type: '%s'", typeName(k))
}

func (d *Dict) put(k, v any) error {
	h, err := hashKey(k)
	if err != nil {
		return err
	}
	if _, ok := d.vals[h]; !ok {
		d.keys = append(d.keys, k)
	}
	d.vals[h] = v
	return nil
}

func (d *Dict) get(k any) (any, bool) {
	h, err := hashKey(k)
	if err != nil {
		return nil, false
	}
	v, ok := d.vals[h]
	return v, ok
}

func (d *Dict) del(k any) bool {
	h, err := hashKey(k)
	if err != nil {
		return false
	}
	if _, ok := d.vals[h]; !ok {
		return false
	}
	delete(d.vals, h)
	for i, e := range d.keys {
		if eh, _ := hashKey(e); eh == h {
			d.keys = append(d.keys[:i:i], d.keys[i+1:]...)
			break
		}
	}
	return true
}

// MarshalJSON writes d as a JSON object in its order; floats keep
// their point (1.0, not 1), so that they read back as floats.
func (d *Dict) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := encodeJSON(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case *Dict:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ks, ok := k.(string)
			if !ok {
				ks = str(k)
			}
			kb, _ := json.Marshal(ks)
			b.Write(kb)
			b.WriteByte(':')
			e, _ := x.get(k)
			if err := encodeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case map[string]any:
		return encodeJSON(b, FromGo(x))
	case []any:
		return encodeList(b, x)
	case *List:
		return encodeList(b, x.items)
	case tuple:
		return encodeList(b, x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("no JSON for the float %v", x)
		}
		b.WriteString(floatRepr(x))
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(j)
	return nil
}

func encodeList(b *bytes.Buffer, l []any) error {
	b.WriteByte('[')
	for i, e := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := encodeJSON(b, e); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

// UnmarshalJSON reads a JSON object into d, keeping its order: objects
// inside become Dicts, arrays []any, integers int64, other numbers
// float64.
func (d *Dict) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec)
	if err != nil {
		return err
	}
	m, ok := v.(*Dict)
	if !ok {
		return fmt.Errorf("want a JSON object")
	}
	*d = *m
	return nil
}

func jsonValue(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := t.(type) {
	case json.Delim:
		switch x {
		case '{':
			m := NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := jsonValue(dec)
				if err != nil {
					return nil, err
				}
				m.Set(kt.(string), v)
			}
			_, err := dec.Token()
			return m, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := jsonValue(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		return x.Float64()
	}
	return t, nil
}

// FromGo converts a Go value to a template value, deeply: maps with
// string keys become Dicts (with sorted keys: a Go map has no order), a
// Dict a copy of it with its values converted, slices and arrays lists,
// integer types int64, float32 float64.
func FromGo(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case *Dict:
		c := NewDict()
		for k, e := range x.All() {
			_ = c.put(k, FromGo(e))
		}
		return c
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			d.Set(k, FromGo(x[k]))
		}
		return d
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = FromGo(e)
		}
		return &List{l}
	case []string:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = e
		}
		return &List{l}
	}
	return v
}
