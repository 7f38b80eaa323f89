//! `gid-admin site`: make the reports bucket serve the site to the public the configured
//! way, and say where the site is.

use clap::Subcommand;
use gid_core::{Config, Profile, SiteAccess};
use gid_runs::site::{apply, plan_for, site_url};
use gid_storage::SignedStore;

#[derive(Debug, Subcommand)]
pub(crate) enum SiteCommand {
    /// Configure the reports bucket for public reads of the site only: its public access
    /// block, a bucket policy on the site's files (bucket-policy) or ACLs (acl), and
    /// optionally static website hosting. Prints every change (the policy in full) first.
    Init {
        /// How the public reads the site (default: publish.access).
        #[arg(long, value_parser = parse_access)]
        access: Option<SiteAccess>,
        /// Also serve the bucket as a static website with index.html as index document
        /// (default: publish.website).
        #[arg(long)]
        website: bool,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the site's URL.
    Url,
}

fn parse_access(s: &str) -> Result<SiteAccess, String> {
    s.parse()
}

pub(crate) async fn site(
    config: &Config,
    store: &dyn SignedStore,
    command: SiteCommand,
) -> anyhow::Result<()> {
    match command {
        SiteCommand::Url => {
            gid_cli::outln!("{}", site_url(config, store).await?);
            Ok(())
        }
        SiteCommand::Init {
            access,
            website,
            dry_run,
        } => {
            let access = access.unwrap_or(config.publish.access);
            let website = website || config.publish.website;
            init(config, store, access, website, dry_run).await
        }
    }
}

async fn init(
    config: &Config,
    store: &dyn SignedStore,
    access: SiteAccess,
    website: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let bucket = &config.buckets.reports;
    if config.profile == Profile::Local {
        gid_cli::outln!(
            "the local backend's site is the folder of bucket {bucket}: nothing to configure"
        );
        gid_cli::outln!("site: {}", site_url(config, store).await?);
        return Ok(());
    }
    let (s3, changes) = plan_for(config, access, website).await?;
    gid_cli::outln!(
        "site init s3://{bucket} (access {}{})",
        access.as_str(),
        if website { ", website" } else { "" }
    );
    if changes.is_empty() {
        gid_cli::outln!("  nothing to change: the bucket is set up");
    }
    for change in &changes {
        gid_cli::outln!(
            "  {} {change}",
            if dry_run { "would change" } else { "change" }
        );
    }
    if access != config.publish.access {
        tracing::warn!(
            "publish.access is \"{}\" in the configuration: set it to \"{}\" so runs publish \
             this way",
            config.publish.access.as_str(),
            access.as_str()
        );
    }
    if website && !config.publish.website {
        tracing::warn!("set publish.website = true so runs print the website endpoint");
    }
    if dry_run {
        gid_cli::outln!("dry run: nothing changed");
        return Ok(());
    }
    apply(&s3, bucket, &changes).await?;
    if !changes.is_empty() {
        gid_cli::outln!("applied {} change(s)", changes.len());
    }
    gid_cli::outln!("site: {}", site_url(config, store).await?);
    Ok(())
}
