-- +goose Up
CREATE TABLE accounts (
    id            CHAR(36)     NOT NULL,
    email         VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name          VARCHAR(200) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    customer_id   CHAR(36)     NULL,
    password_hash VARCHAR(255) NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    version       BIGINT       NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    updated_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY accounts_email (email),
    UNIQUE KEY accounts_customer (customer_id),
    KEY accounts_created (created_at, id),
    KEY accounts_role (role, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE oauth_clients (
    id            VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name          VARCHAR(200) NOT NULL,
    secret_hash   VARCHAR(255) NOT NULL,
    redirect_uris TEXT         NOT NULL,
    grant_types   TEXT         NOT NULL,
    scopes        TEXT         NOT NULL,
    roles         TEXT         NOT NULL,
    created_at    DATETIME(6)  NOT NULL,
    updated_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE oauth_auth_requests (
    id                    CHAR(36)      NOT NULL,
    client_id             VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    redirect_uri          VARCHAR(2048) NOT NULL,
    scopes                TEXT          NOT NULL,
    state                 VARCHAR(2048) NOT NULL,
    nonce                 VARCHAR(2048) NOT NULL,
    response_type         VARCHAR(32)   NOT NULL,
    response_mode         VARCHAR(32)   NOT NULL,
    code_challenge        VARCHAR(128)  NOT NULL,
    code_challenge_method VARCHAR(16)   NOT NULL,
    subject               CHAR(36)      NULL,
    auth_time             DATETIME(6)   NULL,
    done                  BOOLEAN       NOT NULL DEFAULT FALSE,
    code_hash             BINARY(32)    NULL,
    created_at            DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY oauth_auth_requests_code (code_hash),
    KEY oauth_auth_requests_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE oauth_refresh_tokens (
    token_hash BINARY(32)   NOT NULL,
    id         CHAR(36)     NOT NULL,
    client_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    subject    VARCHAR(64)  NOT NULL,
    audience   TEXT         NOT NULL,
    scopes     TEXT         NOT NULL,
    amr        TEXT         NOT NULL,
    auth_time  DATETIME(6)  NOT NULL,
    expires_at DATETIME(6)  NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (token_hash),
    KEY oauth_refresh_tokens_subject (subject, client_id),
    KEY oauth_refresh_tokens_expires (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The provider's signing keys (PKCS#8 DER). retired_at is NULL while a key signs.
CREATE TABLE oauth_signing_keys (
    id          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    algorithm   VARCHAR(16)  NOT NULL,
    private_der BLOB         NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    retired_at  DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY oauth_signing_keys_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE oauth_secrets (
    name       VARCHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value      VARBINARY(255) NOT NULL,
    created_at DATETIME(6)    NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE oauth_secrets;
DROP TABLE oauth_signing_keys;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_auth_requests;
DROP TABLE oauth_clients;
DROP TABLE accounts;
