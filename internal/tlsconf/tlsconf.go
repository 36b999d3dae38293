// Package tlsconf turns certificate files into TLS configurations that
// follow the files: a Source re-reads its certificate, key and CA files
// whenever one of them changes, and the configurations it hands out look
// the certificate and the CA pool up at every handshake. Replacing the
// files is therefore enough to rotate a certificate or a CA; running
// connections keep the certificates they were made with, new ones use the
// new files, and nothing restarts.
//
// A server checks its clients' certificates itself rather than with
// crypto/tls's check, which reads ClientCAs once from a fixed
// configuration: it verifies the chain in VerifyConnection against the pool
// as it is at that handshake, with the same rules (a chain to a CA of the
// pool, allowing client authentication). Clients use crypto/tls's own
// check; see ClientConfig.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of one side of a TLS connection. Cert and Key
// are its own certificate (chain) and private key, both or neither; CA
// holds the certificates that sign the other side's, and when empty the
// system's roots are used.
type Files struct {
	Cert, Key, CA string
}

// stamp identifies one version of a file.
type stamp struct {
	mod  time.Time
	size int64
}

// Source holds what its Files contain and reloads it when a file's
// modification time or size changes. It is safe for concurrent use.
type Source struct {
	files  Files
	logger *slog.Logger

	mu     sync.Mutex
	stamps [3]stamp // of Cert, Key and CA when last read
	cert   *tls.Certificate
	pool   *x509.CertPool // nil: the system's roots
}

// Load reads f. The files must be readable and valid now; later changes
// that cannot be read are logged and the previous contents kept, so that a
// half-written file during a rotation does not break new connections.
func Load(f Files, logger *slog.Logger) (*Source, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("tls: certificate %q and key %q must be given together", f.Cert, f.Key)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{files: f, logger: logger}
	stamps, err := s.stat()
	if err != nil {
		return nil, err
	}
	if err := s.read(stamps); err != nil {
		return nil, err
	}
	return s, nil
}

// HasCertificate reports whether the source has a certificate of its own
// (a client without one presents none).
func (s *Source) HasCertificate() bool { return s.files.Cert != "" }

// stat returns the current stamps of the files (zero for unset ones).
func (s *Source) stat() ([3]stamp, error) {
	var out [3]stamp
	for i, name := range [3]string{s.files.Cert, s.files.Key, s.files.CA} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("tls: %w", err)
		}
		out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

// read loads the files and, if all of them are valid, makes them current.
func (s *Source) read(stamps [3]stamp) error {
	var cert *tls.Certificate
	if s.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
		if err != nil {
			return fmt.Errorf("tls: certificate %s and key %s: %w", s.files.Cert, s.files.Key, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if s.files.CA != "" {
		data, err := os.ReadFile(s.files.CA)
		if err != nil {
			return fmt.Errorf("tls: CA certificate: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("tls: CA certificate %s: no PEM certificate in it", s.files.CA)
		}
	}
	s.stamps, s.cert, s.pool = stamps, cert, pool
	return nil
}

// current returns the certificate and CA pool, reloading them first when a
// file changed since they were read.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stat()
	if err == nil && stamps == s.stamps {
		return s.cert, s.pool
	}
	if err == nil {
		err = s.read(stamps)
	}
	if err != nil {
		// Retried at the next handshake: a rotation in progress completes
		// by changing a file again.
		s.logger.Warn("TLS files changed but cannot be read: keeping the previous certificates", "error", err)
		return s.cert, s.pool
	}
	attrs := []any{"cert", s.files.Cert, "ca", s.files.CA}
	if s.cert != nil {
		attrs = append(attrs, "serial", s.cert.Leaf.SerialNumber.String(), "not_after", s.cert.Leaf.NotAfter)
	}
	s.logger.Info("TLS files changed: reloaded", attrs...)
	return s.cert, s.pool
}

// certificate is tls.Config.GetCertificate.
func (s *Source) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, _ := s.current()
	if cert == nil {
		return nil, errors.New("tls: no certificate configured")
	}
	return cert, nil
}

// clientCertificate is tls.Config.GetClientCertificate: the source's
// certificate, or none (an empty one) when it has none.
func (s *Source) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if cert, _ := s.current(); cert != nil {
		return cert, nil
	}
	return &tls.Certificate{}, nil
}

// ServerConfig is the configuration of a TLS server presenting the
// source's certificate. With verifyClient, clients must present a
// certificate that chains to the CA pool and allows client
// authentication.
func (s *Source) ServerConfig(verifyClient bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certificate}
	if verifyClient {
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyConnection = s.verifyClient
	}
	return cfg
}

// ClientConfig is the configuration of a TLS client presenting the
// source's certificate (if any) when the server asks for one, and
// verifying the server's certificate with crypto/tls's own check: it must
// chain to the CA pool as it is now, allow server authentication and name
// serverName, or, when serverName is empty, the host connected to (which
// http.Transport sets from the URL; callers dialing themselves set
// ServerName). insecure skips that check.
//
// Unlike ServerConfig, the configuration holds the pool it was made with
// (crypto/tls knows the name a client dialed only inside its own check):
// a caller that must follow a new CA file without restarting asks for a
// configuration per connection, as the node-to-node dialer does.
func (s *Source) ClientConfig(serverName string, insecure bool) *tls.Config {
	_, pool := s.current()
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: s.clientCertificate,
		RootCAs:              pool,
		ServerName:           serverName,
		InsecureSkipVerify:   insecure,
	}
}

// verifyClient checks a client's certificate chain against the current
// pool.
func (s *Source) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the peer presented no certificate")
	}
	_, pool := s.current()
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
