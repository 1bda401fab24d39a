output "load_balancer_ip" {
  description = "Global IP of the HTTPS load balancer: point an A record of var.domain at it."
  value       = google_compute_global_address.lb.address
}

output "api_base_url" {
  description = "Public base URL of the API."
  value       = "https://${var.domain}"
}

output "public_function_urls" {
  description = "Public URL of every HTTP function behind the load balancer."
  value       = { for name, f in local.public_functions : name => "https://${var.domain}/${name}" }
}

output "function_urls" {
  description = "Internal run.app URL of every function (not reachable from the internet: ingress is LB or internal only)."
  value       = { for name, f in google_cloudfunctions2_function.fn : name => f.service_config[0].uri }
}

output "function_service_accounts" {
  description = "Service account of every function."
  value       = { for name, sa in google_service_account.fn : name => sa.email }
}

output "secret_ids" {
  description = "Secret Manager secrets whose values must be added out of band (docs/deploy.md)."
  value       = [for s in google_secret_manager_secret.app : s.secret_id]
}

output "source_object" {
  description = "Source archive deployed (named by its hash)."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}
