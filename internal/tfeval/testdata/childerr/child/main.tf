output "broken" {
  value = local.missing
}
