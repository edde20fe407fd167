# terraform_data.n has three instances; index 5 does not exist.
resource "terraform_data" "n" {
  count = 3
  input = count.index
}

output "missing" {
  value = terraform_data.n[5].input
}
