package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
)

// list is a []string stored as a JSON array in a TEXT column.
type list []string

func (l list) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

func (l *list) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return errors.New("mysql: list column is not text")
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return idp.ErrNotFound
	}
	return err
}

// --- clients --------------------------------------------------------------

type clientRow struct {
	ID           string    `db:"id"`
	Name         string    `db:"name"`
	SecretHash   string    `db:"secret_hash"`
	RedirectURIs list      `db:"redirect_uris"`
	GrantTypes   list      `db:"grant_types"`
	Scopes       list      `db:"scopes"`
	Roles        list      `db:"roles"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

// Client returns the client with id, or idp.ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (idp.Client, error) {
	var r clientRow
	err := s.db.GetContext(ctx, &r, `SELECT id, name, secret_hash, redirect_uris, grant_types, scopes, roles, created_at, updated_at FROM oauth_clients WHERE id = ?`, id)
	if err != nil {
		return idp.Client{}, notFound(err)
	}
	return idp.Client{ID: r.ID, Name: r.Name, SecretHash: r.SecretHash, RedirectURIs: r.RedirectURIs, GrantTypes: r.GrantTypes,
		Scopes: r.Scopes, Roles: r.Roles, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// SaveClient creates c or replaces the client with c's id (keeping its
// creation time).
func (s *Store) SaveClient(ctx context.Context, c idp.Client) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO oauth_clients (id, name, secret_hash, redirect_uris, grant_types, scopes, roles, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE name = VALUES(name), secret_hash = VALUES(secret_hash), redirect_uris = VALUES(redirect_uris),
			grant_types = VALUES(grant_types), scopes = VALUES(scopes), roles = VALUES(roles), updated_at = VALUES(updated_at)`,
		c.ID, c.Name, c.SecretHash, list(c.RedirectURIs), list(c.GrantTypes), list(c.Scopes), list(c.Roles), c.CreatedAt, c.UpdatedAt)
	return err
}

// --- auth requests --------------------------------------------------------

type authRequestRow struct {
	ID                  string         `db:"id"`
	ClientID            string         `db:"client_id"`
	RedirectURI         string         `db:"redirect_uri"`
	Scopes              list           `db:"scopes"`
	State               string         `db:"state"`
	Nonce               string         `db:"nonce"`
	ResponseType        string         `db:"response_type"`
	ResponseMode        string         `db:"response_mode"`
	CodeChallenge       string         `db:"code_challenge"`
	CodeChallengeMethod string         `db:"code_challenge_method"`
	Subject             sql.NullString `db:"subject"`
	AuthTime            sql.NullTime   `db:"auth_time"`
	Done                bool           `db:"done"`
	CreatedAt           time.Time      `db:"created_at"`
}

const authRequestColumns = "id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode, code_challenge, code_challenge_method, subject, auth_time, done, created_at"

func (r authRequestRow) request() idp.AuthRequest {
	return idp.AuthRequest{ID: r.ID, ClientID: r.ClientID, RedirectURI: r.RedirectURI, Scopes: r.Scopes, State: r.State, Nonce: r.Nonce,
		ResponseType: r.ResponseType, ResponseMode: r.ResponseMode, CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
		Subject: r.Subject.String, AuthTime: r.AuthTime.Time.UTC(), Done: r.Done, CreatedAt: r.CreatedAt.UTC()}
}

// CreateAuthRequest stores r.
func (s *Store) CreateAuthRequest(ctx context.Context, r idp.AuthRequest) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO oauth_auth_requests (`+authRequestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, FALSE, ?)`,
		r.ID, r.ClientID, r.RedirectURI, list(r.Scopes), r.State, r.Nonce, r.ResponseType, r.ResponseMode, r.CodeChallenge, r.CodeChallengeMethod, r.CreatedAt)
	return err
}

func (s *Store) authRequest(ctx context.Context, where string, arg any) (idp.AuthRequest, error) {
	var r authRequestRow
	if err := s.db.GetContext(ctx, &r, `SELECT `+authRequestColumns+` FROM oauth_auth_requests WHERE `+where, arg); err != nil {
		return idp.AuthRequest{}, notFound(err)
	}
	return r.request(), nil
}

// AuthRequest returns the request with id, or idp.ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string) (idp.AuthRequest, error) {
	return s.authRequest(ctx, "id = ?", id)
}

// AuthRequestByCode returns the request whose code hashes to codeHash, or idp.ErrNotFound.
func (s *Store) AuthRequestByCode(ctx context.Context, codeHash []byte) (idp.AuthRequest, error) {
	return s.authRequest(ctx, "code_hash = ?", codeHash)
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return idp.ErrNotFound
	}
	return nil
}

// SaveAuthCode records the hash of request id's code.
func (s *Store) SaveAuthCode(ctx context.Context, id string, codeHash []byte) error {
	return affectedOne(s.db.ExecContext(ctx, `UPDATE oauth_auth_requests SET code_hash = ? WHERE id = ?`, codeHash, id))
}

// CompleteAuthRequest records the sign-in of subject for request id; only a
// request not yet done can be completed.
func (s *Store) CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time) error {
	return affectedOne(s.db.ExecContext(ctx, `UPDATE oauth_auth_requests SET subject = ?, auth_time = ?, done = TRUE WHERE id = ? AND NOT done`, subject, authTime, id))
}

// DeleteAuthRequest deletes request id.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM oauth_auth_requests WHERE id = ?`, id)
	return err
}

// --- refresh tokens -------------------------------------------------------

type refreshRow struct {
	Hash      []byte    `db:"token_hash"`
	ID        string    `db:"id"`
	ClientID  string    `db:"client_id"`
	Subject   string    `db:"subject"`
	Audience  list      `db:"audience"`
	Scopes    list      `db:"scopes"`
	AMR       list      `db:"amr"`
	AuthTime  time.Time `db:"auth_time"`
	ExpiresAt time.Time `db:"expires_at"`
	CreatedAt time.Time `db:"created_at"`
}

const refreshColumns = "token_hash, id, client_id, subject, audience, scopes, amr, auth_time, expires_at, created_at"

func insertRefresh(ctx context.Context, ex sqlx.ExecerContext, t idp.RefreshToken) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO oauth_refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.ID, t.ClientID, t.Subject, list(t.Audience), list(t.Scopes), list(t.AMR), t.AuthTime, t.ExpiresAt, t.CreatedAt)
	return err
}

// CreateRefreshToken stores t.
func (s *Store) CreateRefreshToken(ctx context.Context, t idp.RefreshToken) error {
	return insertRefresh(ctx, s.db, t)
}

// RefreshToken returns the token with hash, or idp.ErrNotFound.
func (s *Store) RefreshToken(ctx context.Context, hash []byte) (idp.RefreshToken, error) {
	var r refreshRow
	if err := s.db.GetContext(ctx, &r, `SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE token_hash = ?`, hash); err != nil {
		return idp.RefreshToken{}, notFound(err)
	}
	return idp.RefreshToken{Hash: r.Hash, ID: r.ID, ClientID: r.ClientID, Subject: r.Subject, Audience: r.Audience, Scopes: r.Scopes,
		AMR: r.AMR, AuthTime: r.AuthTime.UTC(), ExpiresAt: r.ExpiresAt.UTC(), CreatedAt: r.CreatedAt.UTC()}, nil
}

// RotateRefreshToken deletes the token with oldHash and stores next, in one
// transaction; idp.ErrNotFound when oldHash is gone (used or revoked), so
// that of two concurrent refreshes with one token only one succeeds.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash []byte, next idp.RefreshToken) error {
	return mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := affectedOne(tx.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE token_hash = ?`, oldHash)); err != nil {
			return err
		}
		return insertRefresh(ctx, tx, next)
	})
}

// DeleteRefreshToken deletes the token with hash.
func (s *Store) DeleteRefreshToken(ctx context.Context, hash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE token_hash = ?`, hash)
	return err
}

// DeleteRefreshTokens deletes subject's tokens of clientID.
func (s *Store) DeleteRefreshTokens(ctx context.Context, subject, clientID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE subject = ? AND client_id = ?`, subject, clientID)
	return err
}

// --- signing keys and secrets ---------------------------------------------

type keyRow struct {
	ID         string       `db:"id"`
	Algorithm  string       `db:"algorithm"`
	PrivateDER []byte       `db:"private_der"`
	CreatedAt  time.Time    `db:"created_at"`
	RetiredAt  sql.NullTime `db:"retired_at"`
}

// SigningKeys returns every stored key, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]idp.StoredKey, error) {
	var rows []keyRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, algorithm, private_der, created_at, retired_at FROM oauth_signing_keys ORDER BY created_at DESC, id`); err != nil {
		return nil, err
	}
	out := make([]idp.StoredKey, len(rows))
	for i, r := range rows {
		out[i] = idp.StoredKey{ID: r.ID, Algorithm: r.Algorithm, PrivateDER: r.PrivateDER, CreatedAt: r.CreatedAt.UTC()}
		if r.RetiredAt.Valid {
			out[i].RetiredAt = r.RetiredAt.Time.UTC()
		}
	}
	return out, nil
}

// AddSigningKey stores k and retires the keys still signing, unless one of
// them was created after notBefore (another instance rotated first): then it
// stores nothing and returns false. The signing keys' rows are locked, so two
// instances rotating at once add one key.
func (s *Store) AddSigningKey(ctx context.Context, k idp.StoredKey, notBefore time.Time) (bool, error) {
	added := false
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		added = false
		var newest []time.Time
		if err := tx.SelectContext(ctx, &newest, `SELECT created_at FROM oauth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC FOR UPDATE`); err != nil {
			return err
		}
		if len(newest) > 0 && newest[0].After(notBefore) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_signing_keys SET retired_at = ? WHERE retired_at IS NULL`, k.CreatedAt); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_signing_keys (id, algorithm, private_der, created_at) VALUES (?, ?, ?, ?)`,
			k.ID, k.Algorithm, k.PrivateDER, k.CreatedAt); err != nil {
			return err
		}
		added = true
		return nil
	})
	return added, err
}

// DeleteSigningKeysRetiredBefore deletes keys retired before t.
func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM oauth_signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?`, t)
	return err
}

// Secret returns the secret named name, storing value first if there is none.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO oauth_secrets (name, value, created_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE name = name`, name, value, time.Now().UTC()); err != nil {
		return nil, err
	}
	var out []byte
	if err := s.db.GetContext(ctx, &out, `SELECT value FROM oauth_secrets WHERE name = ?`, name); err != nil {
		return nil, notFound(err)
	}
	return out, nil
}

// Sweep deletes auth requests created before requestsBefore and refresh
// tokens expired before now.
func (s *Store) Sweep(ctx context.Context, requestsBefore, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oauth_auth_requests WHERE created_at < ?`, requestsBefore); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE expires_at < ?`, now)
	return err
}
