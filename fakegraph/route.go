package fakegraph

import (
	"net/http"
	"strings"
)

// ServeHTTP routes the Graph API endpoints and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/_fake/") || p == "/_fake" {
		s.control(w, r)
		return
	}
	version, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	node, edge, _ := strings.Cut(rest, "/")
	if !validVersion(version) || node == "" || strings.Contains(edge, "/") {
		s.writeGraphError(w, r, unknownPath(p))
		return
	}
	switch {
	case edge == "messages" || edge == APIMarketingMessages:
		if r.Method != http.MethodPost {
			s.writeGraphError(w, r, unsupported(r.Method, node))
			return
		}
		if s.cfg.Fast && edge == "messages" {
			s.fastMessages(w, r, node)
			return
		}
		s.messages(w, r, node, edge)
	case edge == "message_templates" && r.Method == http.MethodGet:
		s.readTemplates(w, r, node)
	case edge == "" && node == "debug_token" && r.Method == http.MethodGet:
		s.readDebugToken(w, r)
	case edge == "" && r.Method == http.MethodGet:
		s.readNode(w, r, node)
	case edge == "" || edge == "message_templates":
		s.writeGraphError(w, r, unsupported(r.Method, node))
	default:
		s.writeGraphError(w, r, unknownPath(p))
	}
}

func validVersion(v string) bool {
	if len(v) < 4 || v[0] != 'v' {
		return false
	}
	dot := strings.IndexByte(v, '.')
	if dot < 2 || dot == len(v)-1 {
		return false
	}
	for i := 1; i < len(v); i++ {
		if i != dot && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}
