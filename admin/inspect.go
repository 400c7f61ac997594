package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/token"
)

// runInspect verifies a token against the first session_guard handler of
// the config and prints each step. It fetches the JWKS or discovery
// document when the config names one, and writes nothing anywhere.
func runInspect(cmd *cobra.Command, args []string) error {
	cfg, file, err := localConfig(cmd)
	if err != nil {
		return err
	}
	h, err := handlerOf(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	tc, err := h.TokenConfig(time.Now)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	tc.CacheSize = -1
	return inspect(cmd.OutOrStdout(), tc, strings.TrimSpace(args[0]))
}

// handlerOf decodes the first session_guard handler of a JSON config.
func handlerOf(cfg []byte) (*caddymodule.Handler, error) {
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	raw := findHandler(root)
	if raw == nil {
		return nil, errors.New("no session_guard handler in the config")
	}
	b, _ := json.Marshal(raw)
	h := new(caddymodule.Handler)
	if err := json.Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("decoding the session_guard handler: %w", err)
	}
	if h.JWT == nil {
		return nil, errors.New("the session_guard handler has no jwt block (opaque mode has no tokens to inspect)")
	}
	return h, nil
}

// inspect prints the configuration checked against, the token's header,
// the verification outcome and the identity. It never prints the token.
func inspect(out io.Writer, tc token.Config, raw string) error {
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	p("config:     alg %s  discovery %s  jwks_url %s", dash(strings.Join(tc.Algorithms, " ")), dash(tc.Discovery), dash(tc.JWKSURL))
	p("            issuer %s  audience %s  leeway %s", dash(tc.Issuer), dash(tc.Audience), tc.Leeway)
	if seg, _, ok := strings.Cut(raw, "."); ok {
		var hdr struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			Typ string `json:"typ"`
		}
		if b, err := base64.RawURLEncoding.DecodeString(seg); err == nil && json.Unmarshal(b, &hdr) == nil {
			p("header:     alg %s  kid %s  typ %s", dash(hdr.Alg), dash(hdr.Kid), dash(hdr.Typ))
		}
	}
	v, err := token.New(tc)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := v.Verify(ctx, raw)
	if err != nil {
		p("verify:     REJECTED: %v", err)
		var m *token.Mismatch
		if errors.As(err, &m) {
			p("            %s expected %s, received %s", m.Field, dash(m.Expected), dash(m.Received))
		}
		return errors.New("token rejected")
	}
	p("verify:     ok (signature, exp/nbf/iat, iss, aud, claims)")
	p("session:    key hash %s", id.SessionHash)
	p("user:       %s", id.UserID)
	p("account:    %s", id.AccountID)
	p("roles:      %s", dash(id.Role))
	p("login:      %s  issued %s  expires %s", stamp(id.LoginAt), stamp(id.IssuedAt), stamp(id.ExpiresAt))
	return nil
}
