//! `planrun runbook`: the printed runbook compared exactly (a small plan with every step kind,
//! and plans/nightly.yaml's level 2), the HTML printed to PDF by headless Chromium with the
//! contacts on page 1, hostile plan text escaped, where the plan is found when none is named,
//! and the validation of `recovery.review` and `recovery.training`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::Env;
use support::run::{stderr, stdout};

/// `planrun ARGS` in `dir`, with no `$PLANRUN_PLAN_FILE` unless `plan_file` sets one.
fn planrun(dir: &Path, args: &[&str], plan_file: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_planrun"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("PLANRUN_PLAN_FILE");
    if let Some(file) = plan_file {
        command.env("PLANRUN_PLAN_FILE", file);
    }
    command.output().unwrap()
}

/// The plan digest printed in the upkeep section becomes `DIGEST`: it changes with every
/// byte of the plan, which the rest of the comparison already covers.
fn without_digest(text: &str) -> String {
    match text.find("digest `") {
        Some(at) => {
            let start = at + "digest `".len();
            format!("{}DIGEST{}", &text[..start], &text[start + 12..])
        }
        None => text.to_owned(),
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

const SMALL: &str = r#"version: 1
name: shop
description: The shop's database and uploads
vars:
  data: /srv/shop
secrets:
  db_password: { env: SHOP_DB_PASSWORD }
  s3_secret: { file: /etc/planrun/s3.secret }
sources:
  db: { postgres: { database: shop, host: db1, port: 5433, password: "{{secrets.db_password}}" } }
  uploads: { directory: { path: "{{vars.data}}/uploads" } }
storage:
  disk: { local: { path: /var/backups/shop } }
  cloud:
    s3:
      bucket: shop-backups
      prefix: nightly/
      region: us-east-1
      access_key_id: "{{env.SHOP_S3_KEY}}"
      secret_access_key: "{{secrets.s3_secret}}"
roles:
  dba: { title: Database administrator, contact: "dba@shop.example, +1 555 0100", deputy: "Eve, eve@shop.example" }
  ops: { title: Operations }
recovery:
  objectives: { rpo: 12h }
  review: { every: 6m, last: 2026-01-15 }
  training: { every: 1y }
  credentials: |
    The S3 secret is in the vault at shop/backup.
    Ask *ops* for access.

    The database password: SHOP_DB_PASSWORD in the vault.
  levels:
    1:
      name: Deleted rows
      description: Someone deleted orders.
      steps:
        - id: stop
          role: ops
          manual: |
            Stop the shop:
            systemctl stop shop
        - { id: restore, role: dba, restore: { source: db, database: shop_restored }, confirm: true }
        - { id: uploads, role: ops, restore: { source: uploads, storage: cloud, from: 20260101T020000Z-00000000 } }
        - { id: count, role: dba, check: { sql: "SELECT count(*) FROM orders", source: db, expect: { min: 1 } } }
        - { id: files, check: { files: uploads, expect: matches_backup } }
        - { id: warm, name: Warm the cache, run: [curl, -s, "https://shop.example/?a=1&b=2"] }
        - { id: note, shell: "echo done >> /var/log/shop-recovery" }
        - { id: tell, notify: { webhook: "https://hooks.example/secret-token", message: "shop restored in {{incident.data_loss_window}}" } }
"#;

const SMALL_MARKDOWN: &str = r#"# Recovery runbook: shop, level 1: Deleted rows

Someone deleted orders.

Start the recovery with:

```
planrun recover --level 1 DIR/plan.yaml
```

It shows each step, asks before anything that replaces live data, keeps what it replaces as `<name>_before_<incident>`, and continues after a reboot with `--resume`.

## Contacts

| Role | Contact | Deputy | Responsible for | Steps |
| --- | --- | --- | --- | --- |
| Operations (`ops`) | not set | not set |  | 1, 3 |
| Database administrator (`dba`) | dba@shop.example, +1 555 0100 | Eve, eve@shop.example |  | 2, 4 |

## Objectives

- Data loss (RPO): at most **12h**
- Time to recovery (RTO): not set

## Steps

### 1. `stop`

Owner: **Operations** (`ops`) · manual · done by hand, then acknowledged

Stop the shop:\
systemctl stop shop

### 2. `restore`

Owner: **Database administrator** (`dba`) · restore · planrun runs it · **asks for confirmation first**

Restores source `db` (PostgreSQL database `shop` on `db1:5433`) from the newest restorable set holding it on the restore storage `disk`, or, if it is unreachable or empty, on `cloud`, into database `shop_restored`.

### 3. `uploads`

Owner: **Operations** (`ops`) · restore · planrun runs it

Restores source `uploads` (folder `/srv/shop/uploads`) from set `RUN` on storage `cloud` (this storage only), into its own folder `/srv/shop/uploads`.

### 4. `count`

Owner: **Database administrator** (`dba`) · check · planrun runs it

Runs `SELECT count(*) FROM orders` on source `db` (database `shop`) and expects at least 1.

### 5. `files`

Owner: **not assigned** · check · planrun runs it

Compares the restored files of `uploads` with what the backup recorded.

### 6. `warm`: Warm the cache

Owner: **not assigned** · run · planrun runs it

Runs `curl -s 'https://shop.example/?a=1&b=2'`.

### 7. `note`

Owner: **not assigned** · shell · planrun runs it

Runs this bash script:

```
echo done >> /var/log/shop-recovery
```

### 8. `tell`

Owner: **not assigned** · notify · planrun runs it

Sends a notification: shop restored in \[data-loss window\] (a failed notification does not stop the runbook).

## Where the backups are

### `disk`: a local folder (the restore storage: restore steps that name none read it first)

- Each set is the folder `/var/backups/shop/shop/<set-id>/`, with its `manifest.json`
- List the sets: `planrun snapshots DIR/plan.yaml --storage disk`

### `cloud`: S3 bucket `shop-backups`

- Each set is under `s3://shop-backups/nightly/shop/<set-id>/`, with its `manifest.json`
- Endpoint: AWS S3, region `us-east-1`
- Access key id: the environment variable `SHOP_S3_KEY`
- Secret access key: secret `s3_secret`, from the file `/etc/planrun/s3.secret`
- List the sets: `planrun snapshots DIR/plan.yaml --storage cloud`
- Without planrun: `aws s3 ls s3://shop-backups/nightly/shop/`

## Credentials

The S3 secret is in the vault at shop/backup.\
Ask \*ops\* for access.

The database password: SHOP\_DB\_PASSWORD in the vault.

## Upkeep

- Plan `shop`, file `DIR/plan.yaml`, digest `DIGEST`: if the plan changed since this was printed, print it again.
- Last review: **2026-01-15**, every 6mo, next due 2026-07-15
- Last rehearsal: **2026-06-01 (level 1, completed)**; training every 1y. Rehearse with `planrun recover --level 1 DIR/plan.yaml --rehearse`.
"#;

/// An incident record as `planrun recover` leaves it; only the fields the runbook reads
/// matter, the others are there to show they are ignored.
fn incident(env: &Env, id: &str, record: serde_json::Value) {
    let folder = env.state().join("incidents").join(id);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("incident.json"), record.to_string()).unwrap();
}

#[test]
fn a_small_plans_runbook_is_exact_markdown() {
    let env = Env::new();
    let plan = env.plan(SMALL);
    let state = env.state().display().to_string();
    let args = [
        "runbook",
        "--level",
        "1",
        "plan.yaml",
        "--state-dir",
        &state,
    ];

    // No state directory at all: no rehearsal, said so.
    let output = planrun(env.dir(), &args, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("- Last rehearsal: **no rehearsal recorded**; training every 1y."),
        "{}",
        stdout(&output)
    );

    incident(
        &env,
        "20260601T100000Z-aaaa",
        serde_json::json!({"rehearsal": true, "plan": "shop", "level": 1,
            "started": "2026-06-01T10:00:00Z", "status": "completed", "steps": [{"id": "x"}]}),
    );
    incident(
        &env,
        "20260701T100000Z-bbbb",
        serde_json::json!({"rehearsal": false, "plan": "shop", "level": 1,
            "started": "2026-07-01T10:00:00Z", "status": "completed"}),
    );
    incident(
        &env,
        "20260801T100000Z-cccc",
        serde_json::json!({"rehearsal": true, "plan": "other", "level": 1,
            "started": "2026-08-01T10:00:00Z", "status": "completed"}),
    );
    let output = planrun(env.dir(), &args, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert_eq!(
        without_digest(&env.filter(&stdout(&output))),
        SMALL_MARKDOWN
    );

    // --output writes the same text, whole, to a file.
    let file = env.path("runbook.md");
    let output = planrun(
        env.dir(),
        &[&args[..], &["--output", file.to_str().unwrap()]].concat(),
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        env.filter(&stderr(&output)),
        "planrun: wrote the runbook to DIR/runbook.md\n"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(without_digest(&env.filter(&written)), SMALL_MARKDOWN);
    drop(plan);
}

#[test]
fn a_level_the_plan_does_not_have_and_a_level_that_does_not_exist_are_refused() {
    let env = Env::new();
    env.plan(SMALL);
    let output = planrun(env.dir(), &["runbook", "--level", "3", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "planrun: plan `shop` has no recovery level 3 (it has: 1)\n"
    );
    let output = planrun(env.dir(), &["runbook", "--level", "5", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("5 is not in 1..=4"),
        "{}",
        stderr(&output)
    );
    env.plan("version: 1\nname: bare\n");
    let output = planrun(env.dir(), &["runbook", "--level", "1", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "planrun: plan `bare` has no `recovery:` section, so it has no runbooks\n"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const NIGHTLY_LEVEL_2: &str = r#"# Recovery runbook: crm, level 2: Local hardware failure

The CRM server's hardware failed. Everything is restored onto a replacement server: the database, the code, the config files at their own paths, and the media.

Start the recovery with:

```
planrun recover --level 2 REPO/plans/nightly.yaml
```

It shows each step, asks before anything that replaces live data, keeps what it replaces as `<name>_before_<incident>`, and continues after a reboot with `--resume`.

## Contacts

| Role | Contact | Deputy | Responsible for | Steps |
| --- | --- | --- | --- | --- |
| Systems administrator (`sysadmin`) | ops@example.com, +55 11 0000-0002 | Bruno Lima, bruno.lima@example.com, +55 11 0000-0012 | Restores servers and infrastructure | 1, 3, 4, 5, 6, 9 |
| Database administrator (`dba`) | dba@example.com, +55 11 0000-0001 | Ana Souza, ana.souza@example.com, +55 11 0000-0011 | Restores the data | 2, 7, 8 |
| IT coordinator (`it_coordinator`) | it-coord@example.com, +55 11 0000-0003 | Carla Dias, carla.dias@example.com, +55 11 0000-0013 | Coordinates the recovery effort | 10 |
| Project lead (`project_lead`) | lead@example.com, +55 11 0000-0004 | Daniel Rocha, daniel.rocha@example.com, +55 11 0000-0014 | Talks to stakeholders |  |

## Objectives

- Data loss (RPO): at most **1d**
- Time to recovery (RTO): at most **4h**

## Steps

### 1. `activate`

Owner: **Systems administrator** (`sysadmin`) · manual · done by hand, then acknowledged

Activate the replacement server (standby or new hardware) with PostgreSQL 15 and this plan, and run the rest of this runbook there.

### 2. `restore-db`

Owner: **Database administrator** (`dba`) · restore · planrun runs it · **asks for confirmation first**

Restores source `db` (PostgreSQL database `crm` on `localhost:5432`) from the newest restorable set holding it on the restore storage `local`, or, if it is unreachable or empty, on `offsite`, into database `crm`.

### 3. `restore-code`

Owner: **Systems administrator** (`sysadmin`) · restore · planrun runs it · **asks for confirmation first**

Restores source `code` (Git repository `/srv/crm`) from the newest restorable set holding it on the restore storage `local`, or, if it is unreachable or empty, on `offsite`, into its own folder `/srv/crm`.

### 4. `restore-config`

Owner: **Systems administrator** (`sysadmin`) · restore · planrun runs it · **asks for confirmation first**

Restores source `config` (files `/srv/crm/.env`, `/srv/crm/saas_crm/settings.py`) from the newest restorable set holding it on the restore storage `local`, or, if it is unreachable or empty, on `offsite`, into each file's own path.

### 5. `restore-media`

Owner: **Systems administrator** (`sysadmin`) · restore · planrun runs it · **asks for confirmation first**

Restores source `media` (folder `/srv/crm/media`) from the newest restorable set holding it on the restore storage `local`, or, if it is unreachable or empty, on `offsite`, into its own folder `/srv/crm/media`.

### 6. `dns`

Owner: **Systems administrator** (`sysadmin`) · manual · done by hand, then acknowledged

If the replacement server has another address, update the CRM's DNS record to it.

### 7. `check-users`

Owner: **Database administrator** (`dba`) · check · planrun runs it

Runs `SELECT count(*) FROM auth_user` on source `db` (database `crm`) and expects the value recorded when the backup was made.

### 8. `check-sales`

Owner: **Database administrator** (`dba`) · check · planrun runs it

Runs `SELECT count(*) FROM sales_sale` on source `db` (database `crm`) and expects the value recorded when the backup was made.

### 9. `check-media`

Owner: **Systems administrator** (`sysadmin`) · check · planrun runs it

Compares the restored files of `media` with what the backup recorded.

### 10. `reopen`

Owner: **IT coordinator** (`it_coordinator`) · manual · done by hand, then acknowledged

Check that every function of the CRM works (log in, customers, sales, uploads), then reopen user access.

## Where the backups are

### `local`: a local folder (the restore storage: restore steps that name none read it first)

- Each set is the folder `/var/backups/crm/crm/<set-id>/`, with its `manifest.json`
- List the sets: `planrun snapshots REPO/plans/nightly.yaml --storage local`

### `offsite`: S3 bucket `crm-backups`

- Each set is under `s3://crm-backups/crm/crm/<set-id>/`, with its `manifest.json`
- Endpoint: `https://s3.eu-west-1.amazonaws.com`, region `eu-west-1`
- Access key id: secret `s3_key_id`, from the environment variable `CRM_S3_ACCESS_KEY_ID`
- Secret access key: secret `s3_secret`, from the environment variable `CRM_S3_SECRET_ACCESS_KEY`
- List the sets: `planrun snapshots REPO/plans/nightly.yaml --storage offsite`
- Without planrun: `aws s3 ls s3://crm-backups/crm/crm/ --endpoint-url https://s3.eu-west-1.amazonaws.com`

## Credentials

The S3 keys (CRM\_S3\_ACCESS\_KEY\_ID, CRM\_S3\_SECRET\_ACCESS\_KEY) and the database password (CRM\_DB\_PASSWORD) are in the team password manager, folder "CRM / disaster recovery", readable by the IT coordinator and the systems administrator. A sealed paper copy is in the office safe. The S3 keys can only read and write the crm-backups bucket; if they are lost, the IT coordinator issues new ones from the cloud account's console.\
On the new server, export the three variables in the shell that runs \`planrun recover\`; never write them into the plan.

## Upkeep

- Plan `crm`, file `REPO/plans/nightly.yaml`, digest `DIGEST`: if the plan changed since this was printed, print it again.
- Last review: **2026-11-30**, every 6mo, next due 2027-05-30
- Last rehearsal: **no rehearsal recorded**; training every 1y. Rehearse with `planrun recover --level 2 REPO/plans/nightly.yaml --rehearse`.
"#;

#[test]
fn nightly_level_two_is_exact_markdown() {
    let state = tempfile::tempdir().unwrap();
    let output = planrun(
        &repo(),
        &[
            "runbook",
            "--level",
            "2",
            "plans/nightly.yaml",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output).replace(repo().to_str().unwrap(), "REPO");
    assert_eq!(without_digest(&text), NIGHTLY_LEVEL_2);
}

/// Prints `html` to PDF with headless Chromium and returns the text of page 1.
fn first_page_of(html: &Path) -> String {
    let pdf = html.with_extension("pdf");
    let chromium = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (Debian package `chromium`, installed by .ci/run) must be on PATH");
    assert!(
        chromium.status.success() && pdf.exists(),
        "chromium failed: {}",
        stderr(&chromium)
    );
    let text = Command::new("pdftotext")
        .args(["-f", "1", "-l", "1", "-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package `poppler-utils`, installed by .ci/run) must be on PATH");
    assert!(text.status.success(), "{}", stderr(&text));
    stdout(&text)
}

#[test]
fn the_html_runbook_prints_with_every_contact_on_page_one() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("level2.html");
    let output = planrun(
        &repo(),
        &[
            "runbook",
            "--level",
            "2",
            "plans/nightly.yaml",
            "--format",
            "html",
            "--output",
            html.to_str().unwrap(),
            "--state-dir",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&html).unwrap();
    // One self-contained file: nothing it would fetch, nothing it would run.
    for outside in ["src=", "href=", "<link", "<script", "@import", "url("] {
        assert!(!text.contains(outside), "the HTML holds `{outside}`");
    }
    assert!(text.contains("@media print"));

    let page = first_page_of(&html);
    for expected in [
        "planrun recover --level 2 ",
        "Database",
        "dba@example.com",
        "+55 11 0000-0001",
        "ana.souza@example.com",
        "+55 11 0000-0011",
        "ops@example.com",
        "+55 11 0000-0002",
        "bruno.lima@example.com",
        "it-coord@example.com",
        "+55 11 0000-0003",
        "carla.dias@example.com",
        "lead@example.com",
        "+55 11 0000-0004",
        "daniel.rocha@example.com",
        "+55 11 0000-0014",
        "Data loss (RPO): at most 1d",
    ] {
        assert!(
            page.contains(expected),
            "page 1 lacks `{expected}`:\n{page}"
        );
    }
    // The steps start on the next page.
    assert!(!page.contains("restore-db"), "{page}");
}

#[test]
fn hostile_plan_text_is_escaped_in_html_and_markdown() {
    let env = Env::new();
    env.plan(
        r#"version: 1
name: evil
roles:
  x:
    title: "<script>alert('t')</script>"
    contact: "\"><img src=x onerror=alert(1)>"
    deputy: "a & b <b>bold</b>"
    responsibility: "`rm -rf /` | table"
recovery:
  credentials: "</p><script>alert(\"c\")</script>"
  levels:
    1:
      name: "</title><script>alert(1)</script>"
      description: "<!-- comment --> & 'quotes'"
      steps:
        - { id: m, name: "<i>n</i>", role: x, manual: "<script>document.write('m')</script>\nline \"two\"" }
        - { id: s, shell: "echo '</pre><script>alert(2)</script>'" }
"#,
    );
    let output = planrun(
        env.dir(),
        &["runbook", "--level", "1", "plan.yaml", "--format", "html"],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let html = stdout(&output);
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(!html.contains("<i>"), "{html}");
    assert!(!html.contains("<!--"), "{html}");
    for escaped in [
        "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;",
        "&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;",
        "a &amp; b &lt;b&gt;bold&lt;/b&gt;",
        "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;/p&gt;&lt;script&gt;alert(&quot;c&quot;)&lt;/script&gt;",
        "&lt;script&gt;document.write(&#x27;m&#x27;)&lt;/script&gt;<br>\nline &quot;two&quot;",
        "echo &#x27;&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;&#x27;",
    ] {
        assert!(html.contains(escaped), "missing `{escaped}` in:\n{html}");
    }

    let output = planrun(env.dir(), &["runbook", "--level", "1", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let markdown = stdout(&output);
    assert!(
        markdown.contains(r#"| \<script\>alert('t')\</script\> (`x`) | "\>\<img src=x onerror=alert(1)\> | a \& b \<b\>bold\</b\> | \`rm -rf /\` \| table | 1 |"#),
        "{markdown}"
    );
    assert!(markdown.contains(r"### 1. `m`: \<i\>n\</i\>"), "{markdown}");
    assert!(
        markdown.contains("```\necho '</pre><script>alert(2)</script>'\n```"),
        "{markdown}"
    );
}

/// Removes what the test put in /etc/planrun, even when an assertion fails.
struct SystemPlan {
    created_folder: bool,
}

impl Drop for SystemPlan {
    fn drop(&mut self) {
        std::fs::remove_file("/etc/planrun/planrun.yaml").ok();
        if self.created_folder {
            std::fs::remove_dir("/etc/planrun").ok();
        }
    }
}

fn plan_named(level_name: &str) -> String {
    format!(
        "version: 1\nname: found\nrecovery:\n  levels:\n    1:\n      name: {level_name}\n      steps: []\n"
    )
}

/// The runbook's title line, which names the level and so which plan was read.
fn title(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    stdout(output).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_plan_is_found_in_its_places_in_order_and_the_places_are_listed_when_it_is_not() {
    let system = Path::new("/etc/planrun/planrun.yaml");
    assert!(
        !system.exists(),
        "this test needs /etc/planrun/planrun.yaml absent (it is a real plan on this machine)"
    );
    let env = Env::new();
    let dir = env.dir();
    let runbook = |plan_file: Option<&str>| planrun(dir, &["runbook", "--level", "1"], plan_file);

    let output = runbook(None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        env.filter(&stderr(&output)),
        "planrun: no plan named and none found; looked in:\n  \
         $PLANRUN_PLAN_FILE (not set)\n  \
         /etc/planrun/planrun.yaml\n  \
         DIR/planrun.yaml\n  \
         DIR/plans/planrun.yaml\n\
         name the plan file on the command line, or set $PLANRUN_PLAN_FILE\n"
    );
    assert_eq!(stdout(&output), "");

    std::fs::create_dir(dir.join("plans")).unwrap();
    write_private(&dir.join("plans/planrun.yaml"), &plan_named("in plans"));
    let output = runbook(None);
    assert_eq!(
        title(&output),
        "# Recovery runbook: found, level 1: in plans"
    );
    assert_eq!(
        stderr(&output),
        "planrun: using the plan plans/planrun.yaml (found in plans/ of the current folder)\n"
    );

    write_private(&dir.join("planrun.yaml"), &plan_named("in the folder"));
    let output = runbook(None);
    assert_eq!(
        title(&output),
        "# Recovery runbook: found, level 1: in the folder"
    );
    assert_eq!(
        stderr(&output),
        "planrun: using the plan planrun.yaml (found in the current folder)\n"
    );

    if nix::unistd::geteuid().is_root() {
        let created_folder = !Path::new("/etc/planrun").exists();
        std::fs::create_dir_all("/etc/planrun").unwrap();
        let _cleanup = SystemPlan { created_folder };
        write_private(system, &plan_named("in etc"));
        let output = runbook(None);
        assert_eq!(title(&output), "# Recovery runbook: found, level 1: in etc");
        assert_eq!(
            stderr(&output),
            "planrun: using the plan /etc/planrun/planrun.yaml (the system plan)\n"
        );
    } else {
        eprintln!("not root: /etc/planrun/planrun.yaml is not tried");
    }

    write_private(&dir.join("chosen.yaml"), &plan_named("chosen"));
    let chosen = dir.join("chosen.yaml");
    let output = runbook(Some(chosen.to_str().unwrap()));
    assert_eq!(title(&output), "# Recovery runbook: found, level 1: chosen");
    assert_eq!(
        env.filter(&stderr(&output)),
        "planrun: using the plan DIR/chosen.yaml (from $PLANRUN_PLAN_FILE)\n"
    );

    // A variable that names nothing is an error, not a reason to read another plan.
    let output = runbook(Some("/nonexistent/plan.yaml"));
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "planrun: $PLANRUN_PLAN_FILE names /nonexistent/plan.yaml, which does not exist: correct it, or unset it to look in the usual places\n"
    );

    // A plan named on the command line wins over everything, and is not announced.
    let output = planrun(
        dir,
        &["runbook", "--level", "1", "plans/planrun.yaml"],
        Some(chosen.to_str().unwrap()),
    );
    assert_eq!(
        title(&output),
        "# Recovery runbook: found, level 1: in plans"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn review_and_training_are_validated() {
    let env = Env::new();
    env.plan(
        r#"version: 1
name: upkeep
recovery:
  review: { every: 6mo, last: 2999-01-01 }
  training: { every: 0d }
  levels:
    1:
      name: one
      steps: []
"#,
    );
    let output = planrun(env.dir(), &["validate", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stdout(&output),
        "plan.yaml:4:31: error: recovery.review.last: `2999-01-01` is in the future: the last review cannot have happened yet
  |
4 |   review: { every: 6mo, last: 2999-01-01 }
  |                               ^
  = help: write the day the recovery plan was last reviewed
plan.yaml:5:22: error: recovery.training.every: `0d` is no interval: it would always be due
  |
5 |   training: { every: 0d }
  |                      ^
  = help: write how often, as a calendar span such as `6mo` or `1y`
plan.yaml: invalid (2 errors)
"
    );
    env.plan(
        r#"version: 1
name: upkeep
steps:
  - { id: say, run: [echo, "{{incident.data_loss_window}}"] }
recovery:
  review: { every: 6m, last: 2999-01-01 }
  training: { every: 0d }
  levels:
    1:
      name: one
      steps:
        - { id: tell, manual: "lost: {{incident.data_loss_windw}}" }
        - { id: ok, manual: "lost: {{incident.data_loss_window}}, level {{incident.level}}" }
"#,
    );
    let output = planrun(env.dir(), &["validate", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stdout(&output),
        r#"plan.yaml:4:28: error: steps[0].run[1]: `incident.data_loss_window` exists only in the steps of a recovery level
  |
4 |   - { id: say, run: [echo, "{{incident.data_loss_window}}"] }
  |                            ^
  = help: `planrun recover` fills in `incident.*`; other steps have no incident
plan.yaml:6:30: error: recovery.review.last: `2999-01-01` is in the future: the last review cannot have happened yet
  |
6 |   review: { every: 6m, last: 2999-01-01 }
  |                              ^
  = help: write the day the recovery plan was last reviewed
plan.yaml:7:22: error: recovery.training.every: `0d` is no interval: it would always be due
  |
7 |   training: { every: 0d }
  |                      ^
  = help: write how often, as a calendar span such as `6mo` or `1y`
plan.yaml:12:31: error: recovery.levels[1].steps[0].manual: unknown variable `incident.data_loss_windw`
   |
12 |         - { id: tell, manual: "lost: {{incident.data_loss_windw}}" }
   |                               ^
  = help: did you mean `incident.data_loss_window`?
plan.yaml: invalid (4 errors)
"#
    );
    env.plan(
        r#"version: 1
name: upkeep
recovery:
  review: { every: 6m, last: 2026-02-30 }
  levels: {}
"#,
    );
    let output = planrun(env.dir(), &["validate", "plan.yaml"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stdout(&output),
        "plan.yaml:4:30: error: recovery.review.last: `2026-02-30` is not a date: write the day as YYYY-MM-DD, e.g. `2026-05-01`
  |
4 |   review: { every: 6m, last: 2026-02-30 }
  |                              ^
plan.yaml: invalid (1 error)
"
    );
}
