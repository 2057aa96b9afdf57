/**
 * The credentials-file format, one JSON object: the API key's token and, optionally, where to send it and what the
 * key is. The scheduler writes it (the bootstrap admin key), `capa up` and `capa auth save` write it, and the CLI
 * reads it; one definition keeps the writers and the reader in step.
 */
export interface CredentialsFile {
  token: string;
  address?: string;
  role?: string;
  tenant?: string;
  provider?: string;
  keyId?: string;
}
