// `ftrain certs`: makes and shows the certificates of ftrain's mutual TLS (common/certificates.ts).
// Light at the top on purpose: cli/main.ts imports this file for every command, and the X.509
// library loads only when a certs command runs.

import type { Command } from 'commander';
import { dirname, join } from 'node:path';
import { intOption } from '../domain/job-options.ts';

const WHAT_GOES_WHERE = `
Where the files go:
  ca.crt              to every member (the coordinator and each node)
  ca.key              stays on the machine that issues; never copy it
  NAME.crt, NAME.key  to the member NAME only (NAME is its node id; the coordinator's is "coordinator")
A member's TLS directory thus holds ca.crt, its own NAME.crt and NAME.key. Keys are written with
mode 0600, a new directory with mode 0700.`;

function daysOption(raw: string | undefined, fallback: number): number {
  return intOption('--days', raw, fallback, 1, 36_500);
}

function utc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Adds `ftrain certs init|issue|show` to `program`; each action's errors go to `fail`. */
export function addCertsCommand(program: Command, fail: (err: unknown) => never): void {
  const certs = program
    .command('certs')
    .description('make the certificates of mutual TLS: a CA for the cluster and a certificate per member, named by its node id')
    .addHelpText('after', WHAT_GOES_WHERE);

  certs
    .command('init')
    .description('create the cluster CA in DIR: ca.crt (for every member) and ca.key (stays here)')
    .requiredOption('--dir <dir>', 'the TLS directory (made with mode 0700 if missing)')
    .option('--days <n>', 'validity in days', '3650')
    .option('--force', 'replace an existing CA: every certificate of the old one must then be issued again')
    .addHelpText('after', `${WHAT_GOES_WHERE}\nNext: ftrain certs issue --dir DIR --name coordinator, then one per node.`)
    .action(async (flags: { dir: string; days?: string; force?: boolean }) => {
      try {
        const { initCa, CA_KEY_FILE, DEFAULT_CA_DAYS } = await import('../common/certificates.ts');
        const { caCert } = await initCa(flags.dir, { days: daysOption(flags.days, DEFAULT_CA_DAYS), force: flags.force === true });
        process.stdout.write(`wrote ${join(dirname(caCert), CA_KEY_FILE)}: the CA key, keep it on this machine only (mode 0600)\n`);
        process.stdout.write(`wrote ${caCert}: the CA certificate, copy it to every member\n`);
      } catch (err) {
        fail(err);
      }
    });

  certs
    .command('issue')
    .description("issue NAME.crt and NAME.key in DIR, signed by DIR's CA (run where ca.key is)")
    .requiredOption('--dir <dir>', 'the TLS directory holding ca.crt and ca.key')
    .requiredOption('--name <name>', "the member's name: its node id (`ftrain node --node-id`), or coordinator")
    .option('--days <n>', 'validity in days', '365')
    .option('--force', 'replace an existing NAME.crt and NAME.key')
    .addHelpText('after', WHAT_GOES_WHERE)
    .action(async (flags: { dir: string; name: string; days?: string; force?: boolean }) => {
      try {
        const { checkCertificateName, issueCertificate, CA_CERT_FILE, DEFAULT_CERT_DAYS } = await import('../common/certificates.ts');
        const name = checkCertificateName('--name', flags.name);
        const { cert, key } = await issueCertificate(flags.dir, name, { days: daysOption(flags.days, DEFAULT_CERT_DAYS), force: flags.force === true });
        process.stdout.write(`wrote ${key}: ${name}'s private key (mode 0600)\n`);
        process.stdout.write(`wrote ${cert}: ${name}'s certificate; copy it, the key and ${CA_CERT_FILE} to ${name}'s TLS directory\n`);
      } catch (err) {
        fail(err);
      }
    });

  certs
    .command('show')
    .description("print each certificate in DIR (ca.crt and the members'): name, issuer, validity, SHA-256 fingerprint, and whether it would be used")
    .requiredOption('--dir <dir>', 'the TLS directory')
    .option('--name <name>', 'only ca.crt and this member')
    .addHelpText('after', WHAT_GOES_WHERE)
    .action(async (flags: { dir: string; name?: string }) => {
      try {
        const { checkCertificateName, describeCertificates } = await import('../common/certificates.ts');
        const name = flags.name === undefined ? undefined : checkCertificateName('--name', flags.name);
        const summaries = describeCertificates(flags.dir, name);
        if (summaries.length === 0) process.stdout.write(`${flags.dir}: no certificates; make them with \`ftrain certs init --dir ${flags.dir}\`\n`);
        for (const s of summaries) {
          process.stdout.write(
            [
              s.file,
              `  name     ${s.name ?? '(none)'}`,
              `  issuer   ${s.issuer}${s.issuer === s.name ? ' (self-signed)' : ''}`,
              `  valid    ${utc(s.validFrom)} to ${utc(s.validTo)}`,
              `  sha256   ${s.fingerprint256}`,
              `  status   ${s.problem ?? 'ok'}`,
              '',
            ].join('\n'),
          );
        }
      } catch (err) {
        fail(err);
      }
    });
}
