package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hiltest/hiltest/reference"
	"github.com/spf13/cobra"
)

func newSASCmd() *cobra.Command {
	var (
		idScope, regID, key, resource, policy, dialect string
		expiry, now                                    int64
		ttl                                            time.Duration
		verbose, asJSON                                bool
	)
	cmd := &cobra.Command{
		Use:   "sas --id-scope S --registration-id R --key K (--expiry UNIX | --ttl D)",
		Short: "Build or check a DPS SAS token",
		Long: `Build a DPS SAS token byte for byte as one SDK "dialect" writes it:

  default          uppercase %XX (RFC 3986), skn=registration (DPS raw-HTTPS docs, Python/C# samples)
  azure-sdk-for-c  literal lowercase %2fregistrations%2f, uppercase elsewhere, no skn unless --policy
  azure-iot-sdk-c  lowercase %xx everywhere, keeps !()*, skn=registration

Prints the token on one line. --policy "" leaves skn out. "hiltest sas check"
checks a token made elsewhere.`,
		Example: `  hiltest sas --id-scope 0ne00000A0A --registration-id dev-1 --key "$DEVICE_KEY" --ttl 1h
  hiltest sas --resource 0ne00000A0A/registrations/dev-1 --key "$DEVICE_KEY" --expiry 1700000000 --dialect azure-iot-sdk-c --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := reference.ParseDialect(dialect)
			if err != nil {
				return usageErr(fmt.Errorf("sas: --dialect: %w", err))
			}
			if err := refRequireFlags(cmd, "key"); err != nil {
				return err
			}
			if cmd.Flags().Changed("resource") {
				if cmd.Flags().Changed("id-scope") || cmd.Flags().Changed("registration-id") {
					return usageErr(errors.New("sas: give --resource or --id-scope and --registration-id, not both"))
				}
				if resource == "" {
					return usageErr(errors.New("sas: --resource is empty"))
				}
			} else if err := refRequireFlags(cmd, "id-scope", "registration-id"); err != nil {
				return err
			}
			switch {
			case cmd.Flags().Changed("expiry") == cmd.Flags().Changed("ttl"):
				return usageErr(errors.New("sas: give exactly one of --expiry and --ttl"))
			case cmd.Flags().Changed("ttl"):
				if ttl <= 0 {
					return usageErr(fmt.Errorf("sas: --ttl %s is not positive", ttl))
				}
				base := time.Now()
				if cmd.Flags().Changed("now") {
					base = time.Unix(now, 0)
				}
				expiry = base.Add(ttl).Unix()
			case cmd.Flags().Changed("now"):
				return usageErr(errors.New("sas: --now only goes with --ttl"))
			}
			keyName := d.DefaultKeyName()
			if cmd.Flags().Changed("policy") {
				keyName = policy
			}
			s, err := reference.NewSAS(reference.SASParams{Dialect: d, IDScope: idScope, RegistrationID: regID,
				Resource: resource, Key: key, Expiry: expiry, KeyName: keyName})
			if err != nil {
				return usageErr(err)
			}
			if verbose {
				fmt.Fprintf(cmd.ErrOrStderr(), "string-to-sign: %q\n", s.StringToSign)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(sasJSON{Dialect: string(s.Dialect), Resource: s.Resource, EncodedResource: s.EncodedResource,
					StringToSign: s.StringToSign, Signature: s.Signature, Token: s.Token, Expiry: s.Expiry, KeyName: s.KeyName})
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.Token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idScope, "id-scope", "", "DPS id scope")
	f.StringVar(&regID, "registration-id", "", "registration id")
	f.StringVar(&resource, "resource", "", `raw resource to sign instead of "{id-scope}/registrations/{registration-id}"`)
	f.StringVar(&key, "key", "", "key to sign with (base64): the device key, not the group key")
	f.Int64Var(&expiry, "expiry", 0, "expiry, unix seconds")
	f.DurationVar(&ttl, "ttl", 0, "lifetime from now instead of --expiry, e.g. 1h")
	f.Int64Var(&now, "now", 0, "unix time --ttl counts from (default: the current time)")
	f.StringVar(&policy, "policy", "", `skn value (default: the dialect's own; "" leaves skn out)`)
	f.StringVar(&dialect, "dialect", string(reference.DialectDefault), "token dialect: "+refDialectNames())
	f.BoolVarP(&verbose, "verbose", "v", false, "also print the string to sign on stderr")
	f.BoolVar(&asJSON, "json", false, "print all parts as JSON")
	cmd.AddCommand(newSASCheckCmd())
	return cmd
}

type sasJSON struct {
	Dialect         string `json:"dialect"`
	Resource        string `json:"resource"`
	EncodedResource string `json:"encoded_resource"`
	StringToSign    string `json:"string_to_sign"`
	Signature       string `json:"signature"`
	Token           string `json:"token"`
	Expiry          int64  `json:"expiry"`
	KeyName         string `json:"key_name"`
}

func refDialectNames() string {
	var names []string
	for _, d := range reference.Dialects() {
		names = append(names, string(d))
	}
	return strings.Join(names, ", ")
}

func newSASCheckCmd() *cobra.Command {
	var (
		token, key, idScope, regID, groupKey, dialect string
		now                                           int64
	)
	cmd := &cobra.Command{
		Use:   "check --token T --key K [--id-scope S --registration-id R] [--group-key G]",
		Short: "Check a SAS token made elsewhere: signature, dialect, expiry, what is wrong",
		Long: `Check a DPS SAS token produced by a board or an SDK: whether its signature
verifies with the key, which dialect(s) it is written in, when it expires, and
what is wrong when it does not verify (wrong key, the group key used directly,
a resource that does not name the device, expired, clock never set...).
Exit status 0 when valid, 1 when not. Keys and signatures are not printed.`,
		Example: `  hiltest sas check --token "$TOKEN" --key "$DEVICE_KEY" --id-scope 0ne00000A0A --registration-id dev-1 --group-key "$GROUP_KEY"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refRequireFlags(cmd, "token", "key"); err != nil {
				return err
			}
			if cmd.Flags().Changed("id-scope") != cmd.Flags().Changed("registration-id") {
				return usageErr(errors.New("sas check: give both --id-scope and --registration-id, or neither"))
			}
			if _, err := reference.DecodeKey(key); err != nil {
				return usageErr(fmt.Errorf("sas check: --key: %w", err))
			}
			if cmd.Flags().Changed("group-key") {
				if _, err := reference.DecodeKey(groupKey); err != nil {
					return usageErr(fmt.Errorf("sas check: --group-key: %w", err))
				}
			}
			opts := reference.CheckOptions{IDScope: idScope, RegistrationID: regID, GroupKey: groupKey, Now: time.Now()}
			if cmd.Flags().Changed("dialect") {
				d, err := reference.ParseDialect(dialect)
				if err != nil {
					return usageErr(fmt.Errorf("sas check: --dialect: %w", err))
				}
				opts.Dialect = d
			}
			if cmd.Flags().Changed("now") {
				opts.Now = time.Unix(now, 0)
			}
			// A pasted token often carries a line break; tokens never end in space.
			c := reference.CheckToken(strings.TrimSpace(token), key, opts)
			refPrintCheck(cmd, c)
			if c.Valid {
				return nil
			}
			codes := make([]string, len(c.Problems))
			for i, p := range c.Problems {
				codes[i] = p.Code
			}
			return failErr(fmt.Errorf("sas check: token is not valid: %s", strings.Join(codes, ", ")))
		},
	}
	f := cmd.Flags()
	f.StringVar(&token, "token", "", `the token ("SharedAccessSignature sr=...")`)
	f.StringVar(&key, "key", "", "key the token should verify with (base64)")
	f.StringVar(&idScope, "id-scope", "", "id scope the token should name")
	f.StringVar(&regID, "registration-id", "", "registration id the token should name")
	f.StringVar(&groupKey, "group-key", "", "group key --key was derived from, to detect tokens signed with it directly")
	f.StringVar(&dialect, "dialect", "", "dialect the token is expected in: "+refDialectNames())
	f.Int64Var(&now, "now", 0, "unix time to check expiry against (default: the current time)")
	return cmd
}

// refPrintCheck writes the result of a token check; it holds no key or signature.
func refPrintCheck(cmd *cobra.Command, c reference.TokenCheck) {
	w := cmd.OutOrStdout()
	if c.Valid {
		fmt.Fprintln(w, "token: valid")
	} else {
		fmt.Fprintln(w, "token: NOT valid")
	}
	if !c.Has(reference.ProblemMalformed) {
		ds := "none (no known SDK writes it this way)"
		if len(c.Dialects) > 0 {
			names := make([]string, len(c.Dialects))
			for i, d := range c.Dialects {
				names[i] = string(d)
			}
			ds = strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "dialect: %s\n", ds)
		fmt.Fprintf(w, "resource: %s\n", c.Resource)
		if c.SignatureOK {
			fmt.Fprintln(w, "signature: verifies with the key")
		} else {
			fmt.Fprintln(w, "signature: does not verify with the key")
		}
		if c.ExpiresIn > 0 {
			fmt.Fprintf(w, "expires: %s (%d, in %s)\n", c.Expiry.Format(time.RFC3339), c.Expiry.Unix(), c.ExpiresIn.Round(time.Second))
		} else {
			fmt.Fprintf(w, "expired: %s (%d, %s ago)\n", c.Expiry.Format(time.RFC3339), c.Expiry.Unix(), (-c.ExpiresIn).Round(time.Second))
		}
	}
	for _, p := range c.Problems {
		fmt.Fprintf(w, "problem: %s: %s\n", p.Code, p.Message)
	}
}
