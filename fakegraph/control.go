package fakegraph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

const maxControlBody = 4 << 20

// control serves the control API under /_fake/.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/_fake"), "/")
	parts := strings.Split(path, "/")
	m := r.Method
	switch {
	case path == "stats" && m == http.MethodGet:
		controlJSON(w, http.StatusOK, s.Stats(r.URL.Query().Get("jobs") == "all"))
	case path == "sends" && m == http.MethodGet:
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		controlJSON(w, http.StatusOK, map[string]any{"sends": s.Sends(limit)})
	case len(parts) == 2 && parts[0] == "jobs" && m == http.MethodGet:
		js, ok := s.Job(parts[1])
		status := http.StatusOK
		if !ok {
			status = http.StatusNotFound
		}
		controlJSON(w, status, js)
	case path == "rules" && m == http.MethodGet:
		controlJSON(w, http.StatusOK, map[string]any{"rules": s.Stats(false).Rules})
	case path == "rules" && m == http.MethodPost:
		s.controlAddRules(w, r)
	case path == "rules" && m == http.MethodDelete:
		s.ClearRules()
		controlJSON(w, http.StatusOK, map[string]any{"ok": true})
	case path == "scenario" && m == http.MethodGet:
		controlJSON(w, http.StatusOK, s.Scenario())
	case path == "scenario" && m == http.MethodPut:
		sc, err := DecodeScenario(io.LimitReader(r.Body, maxControlBody), "")
		if err == nil {
			err = s.SetScenario(sc)
		}
		controlResult(w, err)
	case path == "reset" && m == http.MethodPost:
		s.Reset()
		controlJSON(w, http.StatusOK, map[string]any{"ok": true})
	case path == "tokens" && m == http.MethodPost:
		var u TokenUpdate
		err := decodeControl(r, &u)
		if err == nil {
			err = s.SetToken(u)
		}
		controlResult(w, err)
	case path == "inbound" && m == http.MethodPost:
		var in struct {
			From          string `json:"from"`
			PhoneNumberID string `json:"phone_number_id"`
			Text          string `json:"text"`
		}
		err := decodeControl(r, &in)
		if err == nil {
			err = s.Inbound(in.PhoneNumberID, in.From, in.Text)
		}
		controlResult(w, err)
	case len(parts) == 3 && parts[0] == "accounts" && (parts[2] == "lock" || parts[2] == "unlock") && m == http.MethodPost:
		s.SetLocked(parts[1], parts[2] == "lock")
		controlJSON(w, http.StatusOK, map[string]any{"ok": true})
	case (path == "limits/app" || (len(parts) == 3 && parts[0] == "limits" && parts[1] == "waba")) && m == http.MethodPost:
		var in struct {
			For Duration `json:"for"`
		}
		if err := decodeControl(r, &in); err != nil {
			controlResult(w, err)
			return
		}
		if path == "limits/app" {
			s.BlockApp(in.For.D())
		} else {
			s.BlockWABA(parts[2], in.For.D())
		}
		controlJSON(w, http.StatusOK, map[string]any{"ok": true})
	case len(parts) == 3 && parts[0] == "numbers" && parts[2] == "throughput" && m == http.MethodPost:
		var u ThroughputUpdate
		err := decodeControl(r, &u)
		if err == nil {
			err = s.SetThroughput(parts[1], u)
		}
		controlResult(w, err)
	case len(parts) == 3 && parts[0] == "templates" && m == http.MethodPost:
		var u TemplateUpdate
		err := decodeControl(r, &u)
		if err == nil {
			err = s.UpdateTemplate(parts[1], parts[2], u)
		}
		controlResult(w, err)
	case len(parts) == 3 && parts[0] == "numbers" && parts[2] == "quality" && m == http.MethodPost:
		var u NumberUpdate
		err := decodeControl(r, &u)
		if err == nil {
			err = s.UpdateNumber(parts[1], u)
		}
		controlResult(w, err)
	case len(parts) == 3 && parts[0] == "accounts" && parts[2] == "update" && m == http.MethodPost:
		var u AccountUpdate
		err := decodeControl(r, &u)
		if err == nil {
			err = s.UpdateAccount(parts[1], u)
		}
		controlResult(w, err)
	case path == "webhooks" && m == http.MethodGet:
		st := s.hooks.stats()
		st.Recent = s.hooks.recentDeliveries()
		controlJSON(w, http.StatusOK, st)
	case path == "codes" && m == http.MethodGet:
		out := make([]CodeInfo, 0, len(codes))
		for _, c := range Codes() {
			out = append(out, Lookup(c))
		}
		controlJSON(w, http.StatusOK, map[string]any{"codes": out})
	default:
		controlJSON(w, http.StatusNotFound, map[string]string{"error": m + " /_fake/" + path + ": no such control endpoint"})
	}
}

func (s *Server) controlAddRules(w http.ResponseWriter, r *http.Request) {
	sc, err := DecodeScenario(io.LimitReader(r.Body, maxControlBody), "")
	if err != nil {
		controlResult(w, err)
		return
	}
	only := Scenario{Rules: sc.Rules}
	if !reflect.DeepEqual(*sc, only) {
		controlResult(w, errors.New("only rules may be posted to /_fake/rules; PUT /_fake/scenario replaces the scenario"))
		return
	}
	names, err := s.AddRules(sc.Rules...)
	if err != nil {
		controlResult(w, err)
		return
	}
	controlJSON(w, http.StatusOK, map[string]any{"added": names})
}

// decodeControl decodes a JSON control body; unknown fields are errors.
func decodeControl(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func controlResult(w http.ResponseWriter, err error) {
	if err != nil {
		controlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	controlJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func controlJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
