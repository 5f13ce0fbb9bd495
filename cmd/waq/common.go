package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// readAllLimited reads r up to max bytes, refusing more.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return b, nil
}

// replicasFromEnv is WAQ_STREAM_REPLICAS: 1 when unset or not a positive
// whole number.
func replicasFromEnv(env *Env) int {
	n, err := strconv.Atoi(env.Getenv("WAQ_STREAM_REPLICAS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// jsonWords says in words what is wrong with a JSON document, where
// encoding/json names Go types ("cannot unmarshal array into Go value of
// type map[string]json.RawMessage"): want says what was expected.
func jsonWords(err error, want string) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q is a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type))
		}
		return fmt.Sprintf("found a JSON %s, want %s", te.Value, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not valid JSON at byte %d (%s); want %s", se.Offset, strings.TrimPrefix(se.Error(), "invalid character "), want)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || err.Error() == "unexpected end of JSON input" {
		return "the JSON is cut short; want " + want
	}
	return err.Error()
}

// jsonKind names the JSON a Go type takes: "a string", "an object", ...
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage: any JSON value
			return "a JSON value"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another kind of value"
}
