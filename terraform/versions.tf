terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.5.0 added glob patterns in archive_file excludes (used for **/__pycache__).
      version = ">= 2.5, < 3.0"
    }
  }

  # Remote state in a GCS bucket created out of band (docs/deploy.md):
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=backend"
  backend "gcs" {}
}
