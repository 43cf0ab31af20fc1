//! `deed generate`: load the manifest, connect once, observe the catalog,
//! render one language, then write the files or check them.

use anyhow::{Result, bail};
use deed_generate::{Lang, files};

use crate::cli::{Cli, Format, GenerateArgs, GenerateLang};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &GenerateArgs) -> Result<Outcome> {
    if cli.format == Format::Html || cli.format == Format::Markdown {
        bail!("--format {:?} is not a format of deed generate: use table or json", cli.format);
    }
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let lang = match args.lang {
        GenerateLang::Python => Lang::Python,
        GenerateLang::Typescript => Lang::TypeScript,
        GenerateLang::Rust => Lang::Rust,
        GenerateLang::Go => Lang::Go,
        GenerateLang::Jsonschema => Lang::JsonSchema,
        GenerateLang::Asyncapi => Lang::AsyncApi,
    };
    let choice = deed_generate::choose(&manifest, args.service.as_deref())?;
    let client = deed_pg::connect(&url).await?;
    let model = deed_generate::observe(&client, &manifest, &choice).await?;
    let generated = deed_generate::render_files(&model, lang, args.service.as_deref());
    let dir = args.out.display().to_string();
    if args.check {
        let stale = files::check(&args.out, &generated)?;
        let text = match cli.format {
            Format::Json => {
                let mut v = serde_json::to_value(&stale)?;
                v["out"] = dir.clone().into();
                v["current"] = stale.is_current().into();
                serde_json::to_string_pretty(&v)? + "\n"
            }
            _ if stale.is_current() => {
                format!("{dir}: the {} generated files are current\n", generated.len())
            }
            _ => {
                let mut t = format!(
                    "{dir}: generated files are stale; run the same command without --check\n"
                );
                for f in &stale.missing {
                    t += &format!("  missing  {f}\n");
                }
                for f in &stale.changed {
                    t += &format!("  changed  {f}\n");
                }
                for f in &stale.leftover {
                    t += &format!("  left over  {f} (no longer generated)\n");
                }
                t
            }
        };
        context::emit(None, &text)?;
        return Ok(if stale.is_current() { Outcome::Clean } else { Outcome::Findings });
    }
    let files::Written { written, removed } = files::write(&args.out, &generated)?;
    let text = match cli.format {
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "out": dir,
                "files": generated.keys().collect::<Vec<_>>(),
                "written": written,
                "removed": removed,
                "contracts": model.contracts.iter().map(|c| c.reference()).collect::<Vec<_>>(),
                "events": model.events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
            }))? + "\n"
        }
        _ => format!(
            "{dir}: {} files for {} contract versions and {} events ({} written, {} unchanged{})\n",
            generated.len(),
            model.contracts.len(),
            model.events.len(),
            written.len(),
            generated.len() - written.len(),
            if removed.is_empty() {
                String::new()
            } else {
                format!("; removed {} no longer generated: {}", removed.len(), removed.join(", "))
            }
        ),
    };
    context::emit(None, &text)?;
    Ok(Outcome::Clean)
}
