package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
)

// readSecrets moves the contents of client_secret_file, an account's
// password_file, nats.password_file and nats.token_file into ClientSecret,
// Password, NATS.Password and NATS.Token.
func (d *decoder) readSecrets(c *Config) {
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if a.ClientSecretFile != "" {
			d.secretFromFile(&a.ClientSecret, a.ClientSecretFile, accountPath(i)+".client_secret",
				"write the secret's Value (Entra admin center > App registrations > your app > Certificates & secrets) into that file")
		}
		if a.PasswordFile != "" {
			d.secretFromFile(&a.Password, a.PasswordFile, accountPath(i)+".password", "write the login's password into that file")
		}
	}
	n := &c.NATS
	if n.PasswordFile != "" {
		d.secretFromFile(&n.Password, n.PasswordFile, "nats.password", "write the NATS user's password into that file")
	}
	if n.TokenFile != "" {
		d.secretFromFile(&n.Token, n.TokenFile, "nats.token", "write the NATS server's auth token into that file")
	}
}

// secretFromFile sets *dst from the file named by key+"_file". When key is
// set as well that is an error, but the file is still read so its content is
// known to be secret and scrubbed from every message.
func (d *decoder) secretFromFile(dst *string, path, key, fix string) {
	fileKey := key + "_file"
	s := d.readSecretFile(path, fileKey, fix)
	if *dst != "" {
		name := key[strings.LastIndexByte(key, '.')+1:]
		d.at(fileKey, "both "+name+" and "+name+"_file are set", "keep one of them: "+name+" (best as ${ENV}) or "+name+"_file")
		return
	}
	*dst = s
}

// readSecretFile returns the file's content without trailing line breaks.
// Its messages name the file, never its content.
func (d *decoder) readSecretFile(path, key, fix string) string {
	data, err := readSmallFile(path, maxSecretFile)
	if err != nil {
		d.at(key, fileProblem(path, err), fix)
		return ""
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s != "" {
		d.secrets = append(d.secrets, s)
	}
	if strings.TrimSpace(s) == "" {
		d.at(key, "file "+path+" is empty", fix)
	}
	return s
}

// Size limits for files the config names: a secret or CA bundle bigger than
// this is the wrong file.
const (
	maxSecretFile = 64 << 10
	maxCAFile     = 4 << 20
)

var (
	errNotRegular = errors.New("is not a regular file")
	errTooLarge   = errors.New("is too large")
)

// readSmallFile reads a regular file of at most limit bytes. Devices, pipes
// and directories are refused, so a wrong path can never block Load.
func readSmallFile(path string, limit int64) ([]byte, error) {
	if err := regularFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// regularFile checks, without opening it, that path is a regular file.
func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errNotRegular
	}
	return nil
}

// fileProblem describes why a file named in the config cannot be used.
func fileProblem(path string, err error) string {
	switch {
	case errors.Is(err, errNotRegular), errors.Is(err, errTooLarge):
		return path + " " + err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return "file " + path + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "file " + path + " is not readable by this user"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "file " + path + ": " + pe.Err.Error()
	}
	return "file " + path + ": " + err.Error()
}
