variable "inputs" {
  type = list(string)
}

resource "terraform_data" "c" {
  input = join("+", var.inputs)
}

output "joined" {
  value = terraform_data.c.input
}

output "id" {
  value = terraform_data.c.id
}
