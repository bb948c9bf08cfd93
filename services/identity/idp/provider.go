package idp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Config configures the Provider. Zero durations take the defaults shown.
type Config struct {
	// PublicURL is where the identity service is reached by browsers and
	// clients, e.g. http://127.0.0.1:8080/identity (through the gateway).
	// The issuer is PublicURL + "/oauth", the sign-in page PublicURL + "/login".
	PublicURL string
	// Audience is put in every access token's aud: the platform's
	// OIDC_AUDIENCE, e.g. "sagittarius".
	Audience string
	// AccessTokenLifetime: 15m.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime: 7 days. Refresh tokens rotate: each works once.
	RefreshTokenLifetime time.Duration
	// AuthRequestLifetime: how long a sign-in may take, 10m.
	AuthRequestLifetime time.Duration
	// KeyRotation: a signing key is replaced when it is this old, 30 days.
	// The replaced key stays in the JWKS for AccessTokenLifetime + 1h.
	KeyRotation time.Duration
	// KeyEncryptionSecret, when set (at least 32 characters), seals the
	// signing keys in the database with AES-256-GCM: reading the database
	// is then not enough to mint tokens. Keys stored before it was set stay
	// readable; keys sealed with it need it at every start.
	KeyEncryptionSecret string
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// Issuer and LoginURL are derived from PublicURL by New.
	Issuer   string
	LoginURL string
}

func (c *Config) withDefaults() error {
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("idp: public URL %q: want an absolute http(s) URL", c.PublicURL)
	}
	if c.Audience == "" {
		return errors.New("idp: an audience is required")
	}
	base := strings.TrimSuffix(c.PublicURL, "/")
	c.Issuer, c.LoginURL = base+"/oauth", base+"/login"
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTokenLifetime, 15*time.Minute)
	def(&c.RefreshTokenLifetime, 7*24*time.Hour)
	def(&c.AuthRequestLifetime, 10*time.Minute)
	def(&c.KeyRotation, 30*24*time.Hour)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Provider is the OpenID provider. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	store   Store
	storage *storage
	keys    *keyManager
	op      *op.Provider
	login   *login
}

// New returns a Provider on store and accounts. It loads the signing keys
// (creating the first one, or rotating one that is due) and the secret that
// seals authorization codes (created by the first instance to start).
func New(ctx context.Context, cfg Config, store Store, accounts Accounts) (*Provider, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	seal, err := newSealer(cfg.KeyEncryptionSecret)
	if err != nil {
		return nil, err
	}
	keys := &keyManager{store: store, seal: seal, rotate: cfg.KeyRotation, retain: cfg.AccessTokenLifetime + time.Hour, now: time.Now}
	if err := keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("idp: signing keys: %w", err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	sealing, err := store.Secret(ctx, "code_sealing_key", fresh)
	if err != nil || len(sealing) != 32 {
		return nil, fmt.Errorf("idp: code sealing key: %w (%d bytes)", err, len(sealing))
	}
	st := &storage{store: store, accounts: accounts, keys: keys, cfg: cfg, now: time.Now}
	opCfg := &op.Config{
		CryptoKey:             [32]byte(sealing),
		CryptoKeyId:           "code-sealing-1",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		SupportedScopes:       []string{"openid", "profile", "email", "offline_access"},
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint("authorize"), op.NewEndpoint("token"), op.NewEndpoint("userinfo"),
			op.NewEndpoint("revoke"), op.NewEndpoint("end_session"), op.NewEndpoint("keys")),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("introspect")),
	}
	if strings.HasPrefix(cfg.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure()) // local platform without TLS; production issuers are https
	}
	provider, err := op.NewProvider(opCfg, st, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	p := &Provider{cfg: cfg, store: store, storage: st, keys: keys, op: provider}
	p.login = newLogin(accounts, store, cfg, op.AuthCallbackURL(provider), op.NewIssuerInterceptor(provider.IssuerFromRequest))
	return p, nil
}

// Issuer returns the issuer URL (PublicURL + "/oauth").
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Handler serves the provider's protocol surface, outside the service's REST
// API (/v1) because it is not one: OAuth 2.0 and OpenID Connect define its
// paths, forms and, for the sign-in page, HTML.
//
//	/oauth/.well-known/openid-configuration   discovery
//	/oauth/keys                               JWKS
//	/oauth/authorize, /oauth/authorize/callback
//	/oauth/token                              authorization_code (PKCE), refresh_token, client_credentials
//	/oauth/userinfo, /oauth/introspect, /oauth/revoke, /oauth/end_session
//	/login                                    the sign-in page (GET form, POST credentials)
//
// Every other path is not its: the caller routes those.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/oauth/", http.StripPrefix("/oauth", p.op))
	mux.Handle("/login", p.login)
	return mux
}

// Run keeps the signing keys current (rotating when due, picking up another
// instance's rotation) and deletes expired auth requests and refresh tokens,
// every interval, until ctx is done. It returns nil then.
func (p *Provider) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.keys.refresh(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("refresh signing keys", "error", err)
		}
		now := time.Now()
		if err := p.store.Sweep(ctx, now.Add(-p.cfg.AuthRequestLifetime), now); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("sweep expired auth requests and refresh tokens", "error", err)
		}
	}
}

// RotateKey replaces the signing key now, whatever its age: for an operator
// who suspects it leaked. Other instances pick the new key up within their
// Run interval; verifiers fetch it on the first token naming it.
func (p *Provider) RotateKey(ctx context.Context) error {
	k, err := p.keys.newKey(time.Now().UTC())
	if err != nil {
		return err
	}
	if _, err := p.store.AddSigningKey(ctx, k, k.CreatedAt); err != nil {
		return err
	}
	return p.keys.refresh(ctx)
}
